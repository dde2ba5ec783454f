"""Reward model: the transformer with a scalar head on the last token, trained on rankings.

Loss (InstructGPT): every ranking of K replies is one batch element and contributes all its K-choose-2
(better, worse) pairs, -log sigmoid(r_better - r_worse - margin), averaged over its pairs, then over
rankings. Optional reward centring adds center_coef * mean(r^2) (Eisenstein et al., 2023) so scores
stay near 0 and comparable across prompts. Held-out metrics: pairwise accuracy, mean margin
r_better - r_worse, and the mean and spread of the rewards.
Initialised from a fine-tuned stage (the backbone) and a fresh head; checkpoints/<stage> holds
{"params": {"backbone", "head"}, ...}; `load_reward_model` reads it back.
"""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from llm_jax import parallel
from llm_jax.data import preference_batches
from llm_jax.model import Transformer
from llm_jax.posttrain import fit
from llm_jax.posttrain.heads import ScalarHead, final_hidden
from llm_jax.posttrain.sft import initial_params_from
from llm_jax.train import optim
from llm_jax.train import state as state_lib
from llm_jax.train.checkpoint import Checkpointer, abstract_like
from llm_jax.train.loop import stage_dir

KEYS = ("tokens", "lengths", "valid")  # what a reward-model step reads of a preference batch


def default_config() -> ml_collections.ConfigDict:
  """The `reward_model` section."""
  c = ml_collections.ConfigDict()
  c.stage = "reward_model"  # checkpoints/<stage>
  c.init_stage = "sft"  # backbone weights come from checkpoints/<init_stage>
  c.seq_len = 192  # prompt + reply tokens; longer replies are dropped (counted)
  c.margin = 0.0  # required gap: -log sigmoid(r_better - r_worse - margin)
  c.center_coef = 0.0  # weight of mean(r^2) (reward centring); 0 disables
  c.head_init_std = 0.0  # 0: the head starts at zero (every reply scores 0)
  c.train = fit.default_config()
  c.train.update(dict(steps=200, batch_size=8, lr=2e-4, log_every=10, eval_every=50))
  return c


class RewardModel(nnx.Module):
  """(tokens int32[B, T], positions int32[B, T], last int32[B]) -> reward float32[B] read at `last`."""

  def __init__(self, model_cfg, rngs: nnx.Rngs, head_init_std: float = 0.0):
    self.backbone = Transformer(model_cfg, rngs)
    self.head = ScalarHead(model_cfg.d_model, rngs, head_init_std)

  def __call__(self, tokens_BxT, positions_BxT, last_B):
    x_BxTxE = final_hidden(self.backbone, tokens_BxT, positions_BxT)
    x_BxE = jnp.take_along_axis(x_BxTxE, last_B[:, None, None], axis=1)[:, 0]
    return self.head(x_BxE)


def scores(graphdef, params, tokens_BxKxT, lengths_BxK):
  """float32[B, K]: the reward of each reply (read at its last token; an empty row reads token 0)."""
  B, K, T = tokens_BxKxT.shape
  tokens_NxT = tokens_BxKxT.reshape(B * K, T)
  positions_NxT = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32), tokens_NxT.shape)
  last_N = jnp.maximum(lengths_BxK.reshape(-1) - 1, 0)
  return nnx.merge(graphdef, params)(tokens_NxT, positions_NxT, last_N).reshape(B, K)


def bradley_terry_sums(rewards_BxK, valid_BxK, margin: float = 0.0) -> dict:
  """Sums over a batch of rankings (row k better than rows > k): per-ranking mean pair loss summed
  over rankings, correctly ordered pairs (ties count half), pairs, margins, rewards, squared rewards,
  and counts."""
  K = rewards_BxK.shape[1]
  diff_BxKxK = rewards_BxK[:, :, None] - rewards_BxK[:, None, :]  # [b, i, j] = r_i - r_j
  upper_KxK = jnp.triu(jnp.ones((K, K), bool), k=1)  # i better than j
  pairs_BxKxK = (valid_BxK[:, :, None] & valid_BxK[:, None, :] & upper_KxK).astype(jnp.float32)
  n_pairs_B = pairs_BxKxK.sum((1, 2))
  loss_B = (-jax.nn.log_sigmoid(diff_BxKxK - margin) * pairs_BxKxK).sum((1, 2)) / jnp.maximum(n_pairs_B, 1)
  valid = valid_BxK.astype(jnp.float32)
  return {"loss": loss_B.sum(), "rankings": (n_pairs_B > 0).sum().astype(jnp.float32),
          "correct": (((diff_BxKxK > 0) + 0.5 * (diff_BxKxK == 0)) * pairs_BxKxK).sum(),  # a tie is half right
          "pairs": n_pairs_B.sum(),
          "margin": (diff_BxKxK * pairs_BxKxK).sum(), "reward": (rewards_BxK * valid).sum(),
          "reward_sq": (jnp.square(rewards_BxK) * valid).sum(), "replies": valid.sum()}


def bradley_terry_loss(rewards_BxK, valid_BxK, margin: float = 0.0, center_coef: float = 0.0):
  """The training objective: mean over rankings of the mean pair loss, plus center_coef * mean(r^2)."""
  s = bradley_terry_sums(rewards_BxK, valid_BxK, margin)
  loss = s["loss"] / jnp.maximum(s["rankings"], 1)
  return loss + center_coef * s["reward_sq"] / jnp.maximum(s["replies"], 1), s


def summarize(sums: dict, prefix: str) -> dict:
  """Metrics from (accumulated) sums: loss, accuracy, margin, reward_mean, reward_std."""
  s = {k: float(v) for k, v in sums.items()}
  mean = s["reward"] / max(s["replies"], 1)
  return {f"{prefix}/loss": s["loss"] / max(s["rankings"], 1), f"{prefix}/accuracy": s["correct"] / max(s["pairs"], 1),
          f"{prefix}/margin": s["margin"] / max(s["pairs"], 1), f"{prefix}/reward_mean": mean,
          f"{prefix}/reward_std": float(np.sqrt(max(s["reward_sq"] / max(s["replies"], 1) - mean * mean, 0.0)))}


def gold_agreement(rewards_BxK: np.ndarray, gold_BxK: np.ndarray, valid_BxK: np.ndarray) -> tuple[float, int]:
  """(pairs the rewards order as the noiseless gold scores do, a reward tie counting half; pairs with two
  different gold scores) over each ranking's valid replies: agreement with the labeller itself, not with
  its noisy rankings."""
  agree, pairs = 0.0, 0
  for r_K, g_K, v_K in zip(rewards_BxK, gold_BxK, valid_BxK):
    keep = v_K & np.isfinite(g_K)
    r_K, g_K = r_K[keep], g_K[keep]
    dg, dr = np.sign(g_K[:, None] - g_K[None, :]), np.sign(r_K[:, None] - r_K[None, :])
    upper = np.triu(dg != 0, k=1)
    pairs += int(upper.sum())
    agree += float((upper & (dg == dr)).sum() + 0.5 * (upper & (dr == 0)).sum())
  return agree, pairs


def abstract_reward_model(model_cfg, head_init_std: float = 0.0):
  """(graphdef, abstract params) of a RewardModel, without allocating weights."""
  return nnx.split(nnx.eval_shape(lambda: RewardModel(model_cfg, nnx.Rngs(0), head_init_std)))


def init_params(cfg, workdir: str, init_stage: str, abstract_params, shardings, head_init_std: float, seed: int):
  """Backbone from checkpoints/<init_stage>; the head zero (or N(0, head_init_std))."""
  rng = np.random.default_rng(seed)
  head = lambda x, s: jax.device_put(
      (rng.normal(0, head_init_std, x.shape) if head_init_std and x.ndim else np.zeros(x.shape)).astype(x.dtype), s)
  params = jax.tree.map(lambda x: x, abstract_params)  # the structure; both parts are replaced below
  params["head"] = jax.tree.map(head, abstract_params["head"], shardings["head"])
  params["backbone"] = initial_params_from(cfg, workdir, init_stage)(abstract_params["backbone"],
                                                                     shardings["backbone"])
  return params


def train_reward_model(cfg, workdir: str, tokenizer, train_rankings, test_rankings, template: str = "llm_jax") -> dict:
  """Train cfg.reward_model on rankings (best first); returns the stage summary (skipped when done)."""
  rc, tc = cfg.reward_model, cfg.reward_model.train
  done = fit.finished(workdir, rc.stage, tc.steps)
  if done is not None:
    print(f"[{rc.stage}] already finished: skipping", flush=True)
    return done
  train = preference_batches.encode(train_rankings, tokenizer, rc.seq_len, template=template)
  held = preference_batches.encode(test_rankings, tokenizer, rc.seq_len, template=template) if test_rankings else None
  print(f"[{rc.stage}] train {train.stats}; held-out {held.stats if held else None}", flush=True)
  mesh, rules = parallel.make_mesh(cfg.mesh), parallel.rules_dict(cfg.mesh)
  fit.check_batch(tc.batch_size, mesh, rules, "reward_model.train.batch_size")
  graphdef, abstract_params = abstract_reward_model(cfg.model, rc.head_init_std)
  optimizer = optim.make_optimizer(tc, tc.steps)
  abstract_state, shardings = state_lib.state_shapes_and_shardings(abstract_params, optimizer, mesh, rules)

  def init_state():
    params = init_params(cfg, workdir, rc.init_stage, abstract_params, shardings["params"], rc.head_init_std, cfg.seed)
    return state_lib.new_state(params, optimizer, shardings, cfg.seed)

  def loss_fn(params, batch):
    rewards_BxK = scores(graphdef, params, batch["tokens"], batch["lengths"])
    return bradley_terry_loss(rewards_BxK, batch["valid"], rc.margin, rc.center_coef)

  def train_step(state, batch):
    (loss, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], batch)
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    new = dict(state, params=optax.apply_updates(state["params"], updates), opt_state=opt_state, step=state["step"] + 1)
    return new, {"train/loss": loss, "train/accuracy": sums["correct"] / jnp.maximum(sums["pairs"], 1),
                 "train/margin": sums["margin"] / jnp.maximum(sums["pairs"], 1),
                 "train/grad_norm": optax.tree.norm(grads)}

  sharded = lambda f: parallel.with_activation_sharding(f, mesh, rules)
  step_fn = jax.jit(sharded(train_step), out_shardings=(shardings, None), donate_argnums=(0,))
  def eval_fn(params, batch):  # (rewards, sums): one forward pass
    rewards_BxK = scores(graphdef, params, batch["tokens"], batch["lengths"])
    return rewards_BxK, bradley_terry_loss(rewards_BxK, batch["valid"], rc.margin, rc.center_coef)[1]

  sums_fn = jax.jit(sharded(eval_fn))

  def step(state, i):
    batch = preference_batches.train_batch(train, i, tc.batch_size, cfg.seed)
    return step_fn(state, fit.shard_batch({k: batch[k] for k in KEYS}, mesh, rules))

  def evaluate(state):
    if held is None:
      return {}
    total, agree, pairs = None, 0, 0
    for batch in preference_batches.eval_batches(held, tc.batch_size, tc.eval_batches):
      rewards, sums = jax.device_get(sums_fn(state["params"], fit.shard_batch({k: batch[k] for k in KEYS}, mesh,
                                                                               rules)))
      total = sums if total is None else jax.tree.map(np.add, total, sums)
      a, n = gold_agreement(np.asarray(rewards), held.gold[batch["index"]], batch["valid"])
      agree, pairs = agree + a, pairs + n
    metrics = summarize(total, "val")
    if pairs:  # rankings with the labeller's scores (the offline gold)
      metrics["val/gold_accuracy"] = agree / pairs
    return metrics

  return fit.run_stage(cfg, workdir, rc.stage, tc, abstract_like(abstract_state, shardings), init_state, step,
                       evaluate)


def load_reward_model(workdir: str, stage: str = "reward_model"):
  """(graphdef, params, stage config) of a trained reward model, on the current devices."""
  path = os.path.join(stage_dir(workdir, stage), "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no reward model {stage!r} in {workdir} ({path} is missing); train it first "
                            "(configs/reward_model.py)")
  with open(path) as f:
    cfg = ml_collections.ConfigDict(json.load(f))
  graphdef, abstract_params = abstract_reward_model(cfg.model, cfg.reward_model.head_init_std)
  mesh = parallel.make_mesh(shape=(jax.device_count(), 1, 1))
  shardings = parallel.tree_shardings(abstract_params, mesh, dict(cfg.mesh.rules))
  ckpt = Checkpointer(stage_dir(workdir, stage), cfg.checkpoint)
  try:
    params = ckpt.restore_params(abstract_like(abstract_params, shardings))
  finally:
    ckpt.close()
  return graphdef, params, cfg
