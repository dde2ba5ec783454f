"""Direct preference optimisation (Rafailov et al., 2023) and IPO (Azar et al., 2023) on chosen/rejected pairs.

With h = (log pi(y_c) - log ref(y_c)) - (log pi(y_r) - log ref(y_r)) (sums over the reply's tokens):
  sigmoid  -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)   (eps: label smoothing, cDPO)
  ipo      (h - 1 / (2 beta))^2
The implicit rewards are beta (log pi(y) - log ref(y)). IPO uses summed log-probs, as its paper writes it
(TRL divides them by the reply length). The reference is the initial stage; its
log-probabilities are computed once and cached in workdir/cache/dpo_ref/<hash>.npy, keyed by the
encoded data and the reference checkpoint. Rankings of K > 2 replies contribute all their pairs.
"""

import hashlib
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm
from flax import nnx

from llm_jax import parallel
from llm_jax.data import preference_batches, preferences
from llm_jax.posttrain import fit
from llm_jax.posttrain.heads import token_logprobs
from llm_jax.posttrain.sft import initial_params_from
from llm_jax.train import optim
from llm_jax.train import state as state_lib
from llm_jax.train.checkpoint import Checkpointer, abstract_like
from llm_jax.train.loop import stage_dir

LOSSES = ("sigmoid", "ipo")


def default_config() -> ml_collections.ConfigDict:
  """The `dpo` section."""
  c = ml_collections.ConfigDict()
  c.stage = "dpo"  # checkpoints/<stage> (a policy: sample or evaluate it like any stage)
  c.init_stage = "sft"  # starting weights and the frozen reference
  c.loss = "sigmoid"  # "sigmoid" (DPO) | "ipo"
  c.beta = 0.1  # strength of the implicit KL constraint (higher: stay closer to the reference)
  c.label_smoothing = 0.0  # sigmoid only: assumed share of flipped labels (conservative DPO)
  c.nll_coef = 0.0  # weight of the chosen reply's per-token NLL added to the loss (Llama 3 uses 0.2): keeps
  # the chosen replies likely, where plain DPO can lower both replies' log-probs and drift off them
  c.seq_len = 192  # prompt + reply tokens; longer pairs are dropped (counted)
  c.pairs = "all"  # "all": every K-choose-2 pair of a ranking | "best_worst": its first and last reply only
  c.train = fit.default_config()
  c.train.update(dict(steps=100, batch_size=8, lr=5e-5, log_every=10, eval_every=50))
  return c


def sequence_logprobs(graphdef, params, tokens_NxT, mask_NxT):
  """float32[N]: sum of log p(token) over the tokens marked by `mask` (the reply), each predicted from
  the tokens before it."""
  model = nnx.merge(graphdef, params)
  inputs_NxT = tokens_NxT[:, :-1]
  positions_NxT = jnp.broadcast_to(jnp.arange(inputs_NxT.shape[1], dtype=jnp.int32), inputs_NxT.shape)
  logits_NxTxV, _ = model(inputs_NxT, positions_NxT)
  return (token_logprobs(logits_NxTxV, tokens_NxT[:, 1:]) * mask_NxT[:, 1:]).sum(-1)


def preference_loss(policy_c_B, policy_r_B, ref_c_B, ref_r_B, beta: float, kind: str = "sigmoid",
                    label_smoothing: float = 0.0):
  """(loss float32[B], implicit chosen reward [B], implicit rejected reward [B])."""
  h_B = (policy_c_B - ref_c_B) - (policy_r_B - ref_r_B)
  if kind == "sigmoid":
    loss_B = -(1 - label_smoothing) * jax.nn.log_sigmoid(beta * h_B) - label_smoothing * jax.nn.log_sigmoid(-beta * h_B)
  elif kind == "ipo":
    loss_B = jnp.square(h_B - 1.0 / (2.0 * beta))
  else:
    raise ValueError(f"dpo.loss={kind!r} is not one of {LOSSES}")
  return loss_B, beta * (policy_c_B - ref_c_B), beta * (policy_r_B - ref_r_B)


def pair_logprobs(graphdef, params, batch):
  """float32[B, 2]: the sequence log-probs of each pair's chosen and rejected reply."""
  B, _, T = batch["tokens"].shape
  return sequence_logprobs(graphdef, params, batch["tokens"].reshape(2 * B, T),
                           batch["loss_mask"].reshape(2 * B, T)).reshape(B, 2)


def chosen_tokens(batch):
  """float32[B]: how many tokens of each chosen reply are scored (the shifted loss mask)."""
  return batch["loss_mask"][:, 0, 1:].sum(-1)


def pair_sums(logp_Bx2, ref_Bx2, valid_Bx2, chosen_tokens_B, dc) -> dict:
  """Sums over a batch of pairs (rows with valid[:, 0]): loss (the preference loss plus dc.nll_coef times
  the chosen reply's NLL per token), reward margin/accuracy, log-probs."""
  loss_B, chosen_B, rejected_B = preference_loss(logp_Bx2[:, 0], logp_Bx2[:, 1], ref_Bx2[:, 0], ref_Bx2[:, 1],
                                                 dc.beta, dc.loss, dc.label_smoothing)
  nll_B = -logp_Bx2[:, 0] / jnp.maximum(chosen_tokens_B, 1.0)
  loss_B = loss_B + dc.get("nll_coef", 0.0) * nll_B
  w_B = valid_Bx2[:, 0].astype(jnp.float32)
  return {"loss": (loss_B * w_B).sum(), "pairs": w_B.sum(), "chosen_nll": (nll_B * w_B).sum(),
          "reward_margin": ((chosen_B - rejected_B) * w_B).sum(),
          "reward_acc": (((chosen_B > rejected_B) + 0.5 * (chosen_B == rejected_B)) * w_B).sum(),  # ties: half
          "chosen_reward": (chosen_B * w_B).sum(),
          "rejected_reward": (rejected_B * w_B).sum(), "chosen_logp": (logp_Bx2[:, 0] * w_B).sum(),
          "rejected_logp": (logp_Bx2[:, 1] * w_B).sum()}


def summarize(sums: dict, prefix: str) -> dict:
  """Per-pair means of `pair_sums` (traced or on the host)."""
  n = jnp.maximum(sums["pairs"], 1.0)
  return {f"{prefix}/{k}": v / n for k, v in sums.items() if k != "pairs"}


def _cache_path(workdir: str, arrays, ref_stage: str, ref_step: int) -> str:
  h = hashlib.sha256()
  for a in (arrays.tokens, arrays.loss_mask, arrays.valid):
    h.update(np.ascontiguousarray(a).tobytes())
  h.update(f"{ref_stage}@{ref_step}".encode())
  return os.path.join(workdir, "cache", "dpo_ref", f"{h.hexdigest()[:20]}.npy")


def reference_logprobs(workdir: str, arrays, ref_stage: str, ref_step: int, logp_fn, batch_size: int) -> np.ndarray:
  """float32[N, 2] reference log-probs of every pair, read from the cache or computed (then cached)."""
  path = _cache_path(workdir, arrays, ref_stage, ref_step)
  if os.path.exists(path):
    return np.load(path)
  out = np.zeros(arrays.valid.shape, np.float32)
  batches = preference_batches.eval_batches(arrays, batch_size)
  for batch in tqdm.tqdm(batches, desc="[dpo] reference log-probs", total=-(-len(out) // batch_size), unit="batch",
                         disable=jax.process_index() != 0, dynamic_ncols=True):
    out[batch["index"]] = np.asarray(logp_fn(batch))
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path + ".tmp.npy", out)
    os.replace(path + ".tmp.npy", path)
  print(f"[dpo] cached reference log-probs of {len(out)} pairs in {path}", flush=True)
  return out


def preference_pairs(rankings, mode: str) -> list:
  """The (chosen, rejected) pairs DPO trains on: all pairs of each ranking, or only its best and worst reply
  (the widest gap, as in binarised UltraFeedback; a ranking whose two ends are the same text gives none)."""
  if mode == "all":
    return list(preferences.iter_pairs(rankings))
  if mode == "best_worst":
    return [preferences.Pair(r.prompt, r.completions[0], r.completions[-1]) for r in rankings
            if r.completions[0] != r.completions[-1]]
  raise ValueError(f"dpo.pairs={mode!r} is not 'all' or 'best_worst'")


def train_dpo(cfg, workdir: str, tokenizer, train_rankings, test_rankings, template: str = "llm_jax") -> dict:
  """Train cfg.dpo from its init stage on the rankings' pairs (dpo.pairs); returns the stage summary."""
  dc, tc = cfg.dpo, cfg.dpo.train
  done = fit.finished(workdir, dc.stage, tc.steps)
  if done is not None:
    print(f"[{dc.stage}] already finished: skipping", flush=True)
    return done
  as_pairs = lambda rs: [preferences.ranking_of(p) for p in preference_pairs(rs, dc.pairs)]
  train = preference_batches.encode(as_pairs(train_rankings), tokenizer, dc.seq_len, template=template)
  held = preference_batches.encode(as_pairs(test_rankings), tokenizer, dc.seq_len, template=template) if (
      test_rankings) else None
  print(f"[{dc.stage}] train pairs {train.stats}; held-out {held.stats if held else None}", flush=True)
  mesh, rules = parallel.make_mesh(cfg.mesh), parallel.rules_dict(cfg.mesh)
  fit.check_batch(tc.batch_size, mesh, rules, "dpo.train.batch_size")
  graphdef, abstract_params = state_lib.model_graphdef_and_shapes(cfg.model)
  optimizer = optim.make_optimizer(tc, tc.steps)
  abstract_state, shardings = state_lib.state_shapes_and_shardings(abstract_params, optimizer, mesh, rules)
  ref_params = initial_params_from(cfg, workdir, dc.init_stage)(abstract_params, shardings["params"])
  sharded = lambda f: parallel.with_activation_sharding(f, mesh, rules)

  logp_fn = jax.jit(sharded(lambda params, batch: pair_logprobs(graphdef, params, batch)))
  keys = ("tokens", "loss_mask", "valid", "ref")

  def device_batch(batch, ref_all=None):
    """The step's arrays of a host batch, with the reference log-probs of its rows (zeros: not known yet)."""
    ref = ref_all[batch["index"]] if ref_all is not None else np.zeros(batch["valid"].shape, np.float32)
    return fit.shard_batch({**{k: batch[k] for k in keys[:-1]}, "ref": ref}, mesh, rules)

  ckpt = Checkpointer(stage_dir(workdir, dc.init_stage), cfg.checkpoint)
  ref_step = ckpt.steps()[-1]
  ckpt.close()
  ref = lambda arrays: reference_logprobs(workdir, arrays, dc.init_stage, ref_step,
                                          lambda b: logp_fn(ref_params, device_batch(b)), tc.batch_size)
  train_ref, held_ref = ref(train), ref(held) if held is not None else None

  def loss_fn(params, batch):
    sums = pair_sums(pair_logprobs(graphdef, params, batch), batch["ref"], batch["valid"], chosen_tokens(batch), dc)
    return sums["loss"] / jnp.maximum(sums["pairs"], 1), sums

  def train_step(state, batch):
    (loss, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"], batch)
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    metrics = summarize(sums, "train") | {"train/grad_norm": optax.tree.norm(grads)}
    return dict(state, params=optax.apply_updates(state["params"], updates), opt_state=opt_state,
                step=state["step"] + 1), metrics

  step_fn = jax.jit(sharded(train_step), out_shardings=(shardings, None), donate_argnums=(0,))
  sums_fn = jax.jit(lambda logp, batch: pair_sums(logp, batch["ref"], batch["valid"], chosen_tokens(batch), dc))
  def step(state, i):
    return step_fn(state, device_batch(preference_batches.train_batch(train, i, tc.batch_size, cfg.seed), train_ref))

  def evaluate(state):
    if held is None:
      return {}
    total = None
    for batch in preference_batches.eval_batches(held, tc.batch_size, tc.eval_batches):
      batch = device_batch(batch, held_ref)
      sums = jax.device_get(sums_fn(logp_fn(state["params"], batch), batch))  # held-out: reuses logp_fn
      total = sums if total is None else jax.tree.map(np.add, total, sums)
    return summarize(total, "val")

  init_state = lambda: state_lib.new_state(ref_params, optimizer, shardings, cfg.seed)
  return fit.run_stage(cfg, workdir, dc.stage, tc, abstract_like(abstract_state, shardings), init_state, step,
                       evaluate)
