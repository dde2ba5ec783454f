"""The RLHF stage: optimise a policy against a trained reward model, with PPO (posttrain/ppo.py) or with
the RL engineer's GRPO stage (posttrain/rl.py) given the reward model's score as its task reward.

PPO, each step: sample one reply to each of `prompts_per_step` task prompts with the engine (reading the
trainer's parameters in memory); one jitted pass gives the policy's log-probs and values, the frozen
initial model's log-probs and the reward model's score; rewards, GAE and (whitened) advantages follow;
then `epochs` x `minibatches` PPO updates; the adaptive KL coefficient, if on, moves toward its target.
Held-out prompts are sampled every eval_every steps: val/reward_mean (the reward model), val/kl_seq
(KL to the initial model per sequence), val/response_len, and val/gold_mean where a gold function is
given; their replies are appended to samples/<stage>_eval.jsonl. `rlhf.stop` can end the run early.
"""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from llm_jax import parallel
from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.posttrain import fit, gold, ppo, stopping
from llm_jax.posttrain import rollouts as rollouts_lib
from llm_jax.posttrain.heads import ScalarHead
from llm_jax.posttrain.reward_model import load_reward_model
from llm_jax.posttrain.rm_reward import RewardModelScorer, RewardModelTask
from llm_jax.posttrain.sft import initial_params_from
from llm_jax.tasks import make_task
from llm_jax.tokenizer.chat import detect_template, render_for_completion, stop_ids
from llm_jax.train import optim
from llm_jax.train import state as state_lib
from llm_jax.train.checkpoint import abstract_like


def default_config() -> ml_collections.ConfigDict:
  """The `rlhf` section."""
  c = ml_collections.ConfigDict()
  c.algorithm = "ppo"  # "ppo" | "grpo" (the `rl` section's GRPO, rewarded by the reward model)
  c.stage = "rlhf"  # checkpoints/<stage>: the policy ("params") and, for PPO, its value head
  c.init_stage = "sft"  # the starting policy and the KL reference
  c.reward_stage = "reward_model"  # the trained reward model (posttrain/reward_model.py)
  c.task = "arithmetic"  # prompts come from this task (train split; held-out: test split)
  c.max_prompt_len = 96  # prompts longer than this are skipped
  c.max_new_tokens = 96  # reply budget
  c.temperature = 1.0  # sampling temperature (log-probs use the same)
  c.prompts_per_step = 16  # rollouts per PPO step (one reply per prompt)
  c.epochs = 2  # PPO passes over each batch of rollouts
  c.minibatches = 2  # updates per pass
  c.clip = 0.2  # policy ratio clip
  c.value_clip = 0.2  # value change clip
  c.vf_coef = 0.1  # weight of the value loss
  c.gamma = 1.0
  c.lam = 0.95  # GAE lambda
  c.whiten_advantages = True
  c.no_stop_penalty = -1.0  # added to the score of a reply that hit max_new_tokens without ending
  c.kl = ppo.kl_config()
  c.stop = stopping.default_config()
  c.eval_prompts = 32  # held-out prompts per evaluation (rounded up to whole rollout batches)
  c.train = fit.default_config()  # steps = PPO iterations; lr etc. of the policy and value head
  c.train.update(dict(steps=100, lr=2e-5, warmup_steps=5, schedule="constant", b2=0.99, log_every=1,
                      eval_every=10, checkpoint_every=25))
  return c


def _rollout_batch(engine, tokenizer, template, examples, sampling, seq_len):
  """Sample one reply per example; (host arrays for the jitted passes, reply texts, lengths)."""
  prompts = [render_for_completion(list(ex.prompt), tokenizer, template=template) for ex in examples]
  comps = rollouts_lib.complete(engine, prompts, sampling)
  host = rollouts_lib.to_batch(prompts, comps, [1.0] * len(comps), seq_len)
  host["rm_tokens"] = np.zeros_like(host["tokens"])
  host["rm_last"] = np.zeros(len(comps), np.int32)
  for i, (p, c) in enumerate(zip(prompts, comps)):
    ids = (list(p) + list(c.ids))[:seq_len]
    host["rm_tokens"][i, :len(ids)], host["rm_last"][i] = ids, len(ids) - 1
  host["finished"] = np.array([c.finished for c in comps], bool)
  texts = [rollouts_lib.reply_text(tokenizer, c) for c in comps]
  return host, texts, np.array([len(c.ids) for c in comps], np.float64)


def train_ppo(cfg, workdir: str, tokenizer, gold_cfg=None, task=None) -> dict:
  """PPO from cfg.rlhf.init_stage against cfg.rlhf.reward_stage into checkpoints/<cfg.rlhf.stage>.
  gold_cfg: a gold section (posttrain/gold.py) to also report the gold score of every batch."""
  pc, tc = cfg.rlhf, cfg.rlhf.train
  done = fit.finished(workdir, pc.stage, tc.steps)
  if done is not None:
    print(f"[{pc.stage}] already finished: skipping", flush=True)
    return done
  task = task or make_task(pc.task, cfg.get("tasks"), cfg.seed)
  template = detect_template(tokenizer)
  B, seq_len = pc.prompts_per_step, pc.max_prompt_len + pc.max_new_tokens
  if seq_len > cfg.model.max_seq_len:
    raise ValueError(f"rlhf.max_prompt_len + rlhf.max_new_tokens = {seq_len} exceeds model.max_seq_len="
                     f"{cfg.model.max_seq_len}")
  mesh, rules = parallel.make_mesh(cfg.mesh), parallel.rules_dict(cfg.mesh)
  if B % pc.minibatches:
    raise ValueError(f"rlhf.prompts_per_step={B} does not split into rlhf.minibatches={pc.minibatches}")
  fit.check_batch(B // pc.minibatches, mesh, rules, "rlhf.prompts_per_step / rlhf.minibatches")
  pool = rollouts_lib.prompt_pool(task, tokenizer, template, "train", max(tc.steps * B, B), pc.max_prompt_len)
  n_eval = -(-pc.eval_prompts // B) * B
  held_out = rollouts_lib.prompt_pool(task, tokenizer, template, "test", n_eval, pc.max_prompt_len) if n_eval else []
  held_out = [held_out[i % len(held_out)] for i in range(n_eval)] if held_out else []  # whole batches of B

  graphdef, abstract_params = state_lib.model_graphdef_and_shapes(cfg.model)
  head_graphdef, abstract_head = nnx.split(nnx.eval_shape(lambda: ScalarHead(cfg.model.d_model, nnx.Rngs(0))))
  optimizer = optim.make_optimizer(tc, tc.steps * pc.epochs * pc.minibatches)
  trainable = {"params": abstract_params, "value_head": abstract_head}
  abstract_state = {**trainable, "opt_state": jax.eval_shape(optimizer.init, trainable),
                    "step": jax.ShapeDtypeStruct((), jnp.int32), "kl_coef": jax.ShapeDtypeStruct((), jnp.float32)}
  shardings = parallel.tree_shardings(abstract_state, mesh, rules)
  init = initial_params_from(cfg, workdir, pc.init_stage)
  ref_params = init(abstract_params, shardings["params"])
  rm_graphdef, rm_params, _ = load_reward_model(workdir, pc.reward_stage)

  def init_state():
    head = jax.tree.map(lambda x, s: jax.device_put(np.zeros(x.shape, x.dtype), s), abstract_head,
                        shardings["value_head"])
    start = {"params": init(abstract_params, shardings["params"]), "value_head": head}
    opt_state = jax.jit(optimizer.init, out_shardings=shardings["opt_state"])(start)
    return {**start, "opt_state": opt_state, "step": jax.device_put(np.int32(0), shardings["step"]),
            "kl_coef": jax.device_put(np.float32(pc.kl.coef), shardings["kl_coef"])}

  sharded = lambda f: parallel.with_activation_sharding(f, mesh, rules)
  experience_fn = jax.jit(sharded(ppo.make_experience_fn(graphdef, head_graphdef, rm_graphdef, pc)))
  update_fn = jax.jit(sharded(ppo.make_update_step(graphdef, head_graphdef, optimizer, pc)),
                      out_shardings=(shardings, None), donate_argnums=(0,))
  engine = Engine(graphdef, ref_params, cfg.model.max_seq_len)
  sampling = SamplingParams(max_new_tokens=pc.max_new_tokens, temperature=pc.temperature,
                            stop_ids=stop_ids(tokenizer, template), seed=cfg.seed)
  device = lambda host: fit.shard_batch(host, mesh, rules)
  check = _check_scorer(pc.stop.check, workdir, tokenizer, template, seq_len, B)
  rule = stopping.StopRule(pc.stop)

  def rollout(state, examples, seed):
    engine.params = state["params"]
    host, texts, lengths = _rollout_batch(engine, tokenizer, template, examples,
                                          dataclasses.replace(sampling, seed=seed), seq_len)
    exp = experience_fn(state, ref_params, rm_params, device(host))
    return host, jax.device_get(exp), texts, lengths

  def stats(host, exp, texts, lengths, examples, prefix) -> dict:
    mask = host["mask"]
    m = {f"{prefix}/reward_mean": float(exp["rm_score"].mean()), f"{prefix}/reward_std": float(exp["rm_score"].std()),
         f"{prefix}/kl": float((exp["kl"] * mask).sum() / max(mask.sum(), 1)),
         f"{prefix}/kl_seq": float(exp["kl"].sum(1).mean()), f"{prefix}/response_len": float(lengths.mean()),
         f"{prefix}/stop_frac": float(host["finished"].mean())}
    if gold_cfg is not None:
      m[f"{prefix}/gold_mean"] = float(np.mean([gold.score(t, ex.answer, gold_cfg, ex.prompt)
                                                 for t, ex in zip(texts, examples)]))
    return m

  def step(state, i):
    examples = [pool[(i * B + j) % len(pool)] for j in range(B)]
    host, exp, texts, lengths = rollout(state, examples, cfg.seed * 100003 + i)
    keys = ("tokens", "positions", "targets", "mask")
    batch = {**{k: host[k] for k in keys}, **{k: exp[k] for k in ("old_logp", "old_values", "adv", "returns")}}
    updates = []
    for epoch in range(pc.epochs):
      order = np.random.default_rng([cfg.seed, i, epoch]).permutation(B)
      for idx in np.split(order, pc.minibatches):
        state, um = update_fn(state, device({k: v[idx] for k, v in batch.items()}))
        updates.append(um)
    updates = jax.device_get(updates)
    if any(int(u["nonfinite"]) for u in updates):
      raise ValueError(f"non-finite PPO loss at step {i + 1}; lower rlhf.train.lr")
    m = stats(host, exp, texts, lengths, examples, "rl")
    m.update({k: float(np.mean([u[k] for u in updates])) for k in updates[0] if k != "nonfinite"})
    m["rl/kl_coef"] = float(state["kl_coef"])
    state["kl_coef"] = jax.device_put(np.float32(ppo.update_kl_coef(m["rl/kl_coef"], m["rl/kl_seq"], B, pc.kl)),
                                      shardings["kl_coef"])
    return state, m

  def evaluate(state):
    if not held_out:
      return {}
    parts, records = [], []
    for start in range(0, len(held_out), B):
      examples = held_out[start:start + B]
      host, exp, texts, lengths = rollout(state, examples, cfg.seed + 7919 + start)
      m = stats(host, exp, texts, lengths, examples, "val")
      if check is not None:
        m["val/check_mean"] = float(np.mean(check(examples, texts, gold_cfg)))
      parts.append(m)
      records += [{"prompt": ex.prompt[-1]["content"], "reply": t, "proxy": float(s)}
                  for ex, t, s in zip(examples, texts, exp["rm_score"])]
    _append_samples(workdir, pc.stage, int(state["step"]) // (pc.epochs * pc.minibatches), records)
    return {k: float(np.mean([p[k] for p in parts])) for k in parts[0]}

  return fit.run_stage(cfg, workdir, pc.stage, tc, abstract_like(abstract_state, shardings), init_state, step,
                       evaluate, should_stop=rule)


def _check_scorer(spec: str, workdir: str, tokenizer, template: str, seq_len: int, batch_size: int):
  """check(examples, texts, gold_cfg) -> scores of the held-out check (stopping.py), or None."""
  if not spec:
    return None
  if spec == "gold":
    def by_gold(examples, texts, gold_cfg):
      if gold_cfg is None:
        raise ValueError("rlhf.stop.check='gold' needs a gold function (the config's `gold` section)")
      return [gold.score(t, ex.answer, gold_cfg, ex.prompt) for t, ex in zip(texts, examples)]
    return by_gold
  kind, _, stage = spec.partition(":")
  if kind != "rm" or not stage:
    raise ValueError(f"rlhf.stop.check={spec!r} is not '', 'gold' or 'rm:<stage>'")
  scorer = RewardModelScorer(workdir, stage, tokenizer, template, seq_len, batch_size)
  return lambda examples, texts, _: scorer.scores([ex.prompt for ex in examples], texts)


def _append_samples(workdir: str, stage: str, step: int, records: list[dict]) -> None:
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  with open(os.path.join(workdir, "samples", f"{stage}_eval.jsonl"), "a", encoding="utf-8") as f:
    for r in records:
      f.write(json.dumps({"step": step, **r}, ensure_ascii=False) + "\n")


def train_grpo(cfg, workdir: str, tokenizer, task=None) -> dict:
  """The `rl` section's GRPO (posttrain/rl.py) with the reward model's score as the task reward."""
  from llm_jax.posttrain import rl  # pylint: disable=g-import-not-at-top
  pc = cfg.rlhf
  task = task or make_task(pc.task, cfg.get("tasks"), cfg.seed)
  scorer = RewardModelScorer(workdir, pc.reward_stage, tokenizer, detect_template(tokenizer),
                             cfg.rl.max_prompt_len + cfg.rl.max_new_tokens, batch_size=1)
  return rl.train_rl(cfg, workdir, tokenizer, RewardModelTask(task, scorer), pc.init_stage, pc.stage)


def run_rlhf(cfg, workdir: str, tokenizer, gold_cfg=None) -> dict:
  """The configured algorithm (rlhf.algorithm)."""
  if cfg.rlhf.algorithm == "ppo":
    return train_ppo(cfg, workdir, tokenizer, gold_cfg)
  if cfg.rlhf.algorithm == "grpo":
    return train_grpo(cfg, workdir, tokenizer)
  raise ValueError(f"rlhf.algorithm={cfg.rlhf.algorithm!r} is not one of ppo, grpo")
