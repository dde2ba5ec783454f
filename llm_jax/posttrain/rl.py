"""The RL stage: GRPO against a task's checkable answers, from a trained stage into checkpoints/<stage>.

Each step samples G replies to each of N training prompts with the KV-cache engine, which reads the
trainer's current parameters in memory (no disk round trip); scores them with the task's reward; turns
rewards into group advantages; recomputes the sampling policy's per-token log-probs with one jitted
forward pass (equal to the sampler's at top_k=0, top_p=1); then takes `epochs` x `minibatches` clipped
policy-gradient steps (posttrain/grpo.py). Held-out pass@1/pass@k are measured before training, every
`eval_every` steps and at the end; the first and last also go to eval.json (eval/rl_<task>@<stage>/...).
Metrics go to metrics/<stage>.jsonl, sample completions to samples/rl_step<k>.txt; checkpoints resume.
`algorithm="rejection"` runs rejection-sampling fine-tuning instead (posttrain/rejection.py).
"""

import dataclasses
import json
import os
import sys
import time

import jax
import ml_collections
import numpy as np

from llm_jax import parallel
from llm_jax.eval import results
from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.model.config import shape_keys
from llm_jax.posttrain import grpo, rl_eval
from llm_jax.posttrain import rollouts as rollouts_lib
from llm_jax.posttrain.rejection import rejection_finetune
from llm_jax.posttrain.rl_step import make_logp_fn, make_update_step
from llm_jax.posttrain.sft import initial_params_from
from llm_jax.tasks import make_task
from llm_jax.tasks.rewards import make_reward
from llm_jax.tokenizer.chat import detect_template, stop_ids
from llm_jax.train import optim
from llm_jax.train import state as state_lib
from llm_jax.train.checkpoint import Checkpointer, abstract_like, write_json
from llm_jax.train.loop import NonFiniteLoss, stage_dir
from llm_jax.train.metrics import MetricWriter, format_duration, read_metrics, truncate_metrics


def default_config() -> ml_collections.ConfigDict:
  """The `rl` section."""
  c = ml_collections.ConfigDict()
  c.stage = "rl"  # checkpoint folder the RL model is written to (experiments/speedrun.py, grpo.py)
  c.algorithm = "grpo"  # "grpo" | "rejection" (sample, keep the correct, fine-tune; posttrain/rejection.py)
  c.task = "arithmetic"  # task (llm_jax.tasks) giving prompts (train split), held-out prompts and the reward
  c.reward = "correct@1"  # weighted reward terms: correct, format (tasks/rewards.py)
  c.steps = 100  # RL steps: sample, score, update
  c.prompts_per_step = 16  # N prompts per step
  c.group_size = 8  # G replies per prompt
  c.max_prompt_len = 256  # prompts longer than this many tokens are skipped
  c.max_new_tokens = 256  # reply budget (tool outputs included); a reply that hits it is truncated
  c.temperature = 1.0  # sampling temperature; log-probs are computed at the same temperature
  c.top_p = 1.0  # keep 1 (and top_k 0): the recomputed log-probs then equal the sampler's
  c.top_k = 0
  c.rollout_batch = 0  # engine rows per generation batch (held-out eval too); 0: N * G
  c.epochs = 1  # optimisation passes over each batch of rollouts
  c.minibatches = 1  # optimizer steps per pass (N * G rows split evenly)
  c.advantage_scale = "group"  # "group" (GRPO) | "batch" | "none" (Dr. GRPO)
  c.loss_agg = "token"  # "token" (DAPO) | "sequence" (GRPO) | "constant" (Dr. GRPO: / max_new_tokens)
  c.eps_low = 0.2  # ratio clip below 1 - eps_low
  c.eps_high = 0.28  # ... and above 1 + eps_high (DAPO's clip-higher)
  c.kl_coef = 0.0  # weight of the KL to the initial (reference) model in the loss
  c.kl_estimator = "k3"  # "k1" | "k3"
  c.track_kl = True  # log rl/kl even when kl_coef = 0 (one more forward pass per step, a params copy)
  c.drop_zero_variance = True  # groups whose rewards are all equal carry no loss (and no token count)
  c.truncation = "mask"  # truncated replies: "mask" (no loss) | "penalty" (reward - penalty) | "none"
  c.truncation_penalty = 1.0
  c.tools = ""  # tools run during rollouts, e.g. "python"; their outputs are forced and carry no loss
  c.search_corpus = ""  # the search tool's corpus (a data source spec), if "search" is in tools
  c.train_examples = 0  # training prompt pool; 0: steps * prompts_per_step (each prompt once)
  c.eval_every = 25  # held-out evaluation interval in steps (also before the first and after the last)
  c.eval_examples = 64  # held-out prompts; 0 disables evaluation
  c.eval_samples = 16  # replies per held-out prompt (pass@k for k <= this)
  c.eval_ks = "1,16"
  c.log_every = 1
  c.samples_every = 25  # samples/rl_step<k>.txt interval
  c.checkpoint_every = 25
  c.tensorboard = True
  c.optim = optim.default_config()  # the optimizer; RL moves slowly: small constant lr, no decay
  c.optim.update(dict(lr=1e-6, warmup_steps=5, schedule="constant", weight_decay=0.0, b2=0.99, grad_clip=1.0))
  c.rejection = ml_collections.ConfigDict(dict(
      rounds=2,  # sample-filter-train rounds
      problems=256,  # training problems per round
      samples=16,  # replies sampled per problem
      keep=1,  # correct replies kept per problem, shortest first
      steps=100,  # fine-tuning steps per round (the rest of the SFT loop settings: sft.train or train)
      batch_size=16,  # fine-tuning batch (sequences of model.max_seq_len)
      lr=1e-4))  # fine-tuning peak learning rate
  return c




def run_rl(cfg, workdir: str, tokenizer, task=None, init_stage: str = "sft", stage: str = "rl") -> dict:
  """The RL stage with the configured algorithm (rl.algorithm): GRPO or rejection-sampling fine-tuning."""
  if cfg.rl.algorithm == "grpo":
    return train_rl(cfg, workdir, tokenizer, task, init_stage, stage)
  if cfg.rl.algorithm == "rejection":
    return rejection_finetune(cfg, workdir, tokenizer, task, init_stage, stage)
  raise ValueError(f"rl.algorithm={cfg.rl.algorithm!r} is not one of grpo, rejection")


def _reward_trend(rows: list[dict]) -> dict:
  """Mean reward over the first and the last tenth of the steps (at least one, at most 10 steps each):
  single steps are noisy with few prompts."""
  rewards = [r["rl/reward_mean"] for r in rows if "rl/reward_mean" in r]
  if not rewards:
    return {}
  n = min(max(len(rewards) // 10, 1), 10)
  return {"rl/reward_mean_first": float(np.mean(rewards[:n])), "rl/reward_mean_last": float(np.mean(rewards[-n:]))}


def _masked_mean(x: np.ndarray, mask: np.ndarray) -> float:
  return float((x * mask).sum() / max(mask.sum(), 1.0))


def _checked_shapes(rc, model_cfg, devices: int) -> tuple[int, int]:
  """(row length, rows per step); one-line errors for settings that cannot work."""
  seq_len, rows = rc.max_prompt_len + rc.max_new_tokens, rc.prompts_per_step * rc.group_size
  if seq_len > model_cfg.max_seq_len:
    raise ValueError(f"rl.max_prompt_len + rl.max_new_tokens = {seq_len} exceeds model.max_seq_len="
                     f"{model_cfg.max_seq_len}")
  if rc.group_size < 2:
    raise ValueError(f"rl.group_size={rc.group_size}: group advantages need at least 2 replies per prompt")
  if rows % rc.minibatches or (rows // rc.minibatches) % devices:
    raise ValueError(f"rl.prompts_per_step * rl.group_size = {rows} rows must split into rl.minibatches="
                     f"{rc.minibatches} minibatches that divide across {devices} batch-sharded devices")
  return seq_len, rows


def _tool_engine(rc, engine: Engine, tokenizer):
  if not rc.tools:
    return None
  from llm_jax.infer.tool_engine import ToolEngine  # pylint: disable=g-import-not-at-top
  from llm_jax.infer.tools import make_tools  # pylint: disable=g-import-not-at-top
  return ToolEngine(engine, tokenizer, make_tools(rc.tools, rc.search_corpus, tokenizer=tokenizer))


def _line(stage: str, step: int, total: int, m: dict, rate: float) -> str:
  parts = [f"[{stage}] step {step}/{total} ({100 * step / max(total, 1):.0f}%)",
           f"reward {m['rl/reward_mean']:.3f} \u00b1 {m['rl/reward_std']:.2f}", f"len {m['rl/response_len']:.0f}"]
  parts += [fmt.format(m[k]) for k, fmt in (("rl/zero_var_frac", "zero-var {:.0%}"), ("rl/kl", "kl {:.4f}"),
                                            ("rl/clip_frac", "clip {:.3f}"), ("rl/entropy", "ent {:.2f}")) if k in m]
  return " | ".join(parts + [f"{rate:.1f} s/step", f"eta {format_duration(rate * (total - step))}"])


def train_rl(cfg, workdir: str, tokenizer, task=None, init_stage: str = "sft", stage: str = "rl") -> dict:
  """GRPO from checkpoints/<init_stage> into checkpoints/<stage> (resumed, or skipped when finished).
  `task` overrides cfg.rl.task (any Task: examples(split, n) and reward(text, example))."""
  rc = cfg.rl
  if jax.process_count() > 1:
    raise ValueError("the RL stage runs in one process (any number of its devices); launch it on one host")
  task = task or make_task(rc.task, cfg.get("tasks"), cfg.seed)
  reward_fn, template = make_reward(rc.reward, task), detect_template(tokenizer)
  stops = stop_ids(tokenizer, template)
  mesh, rules = parallel.make_mesh(cfg.mesh), parallel.rules_dict(cfg.mesh)
  seq_len, rows = _checked_shapes(rc, cfg.model, parallel.batch_divisor(mesh, rules))
  N, G = rc.prompts_per_step, rc.group_size
  pool = rollouts_lib.prompt_pool(task, tokenizer, template, "train", rc.train_examples or rc.steps * N,
                                  rc.max_prompt_len)
  held_out = rollouts_lib.prompt_pool(task, tokenizer, template, "test", rc.eval_examples,
                                      rc.max_prompt_len) if rc.eval_examples else []
  graphdef, abstract_params = state_lib.model_graphdef_and_shapes(cfg.model)
  total_updates = rc.steps * rc.epochs * rc.minibatches
  optimizer = optim.make_optimizer(rc.optim, total_updates)
  abstract_state, shardings = state_lib.state_shapes_and_shardings(abstract_params, optimizer, mesh, rules)
  directory = stage_dir(workdir, stage)
  summary_path, meta = os.path.join(directory, "summary.json"), {"model": shape_keys(cfg.model), "stage": stage}
  ckpt = Checkpointer(directory, ml_collections.ConfigDict({**cfg.checkpoint.to_dict(),
                                                            "every_steps": rc.checkpoint_every}))
  init = initial_params_from(cfg, workdir, init_stage)
  restored = ckpt.restore_latest(abstract_like(abstract_state, shardings), expect_meta=meta)
  if restored is not None:
    start, state = restored[0], restored[1]
    if start >= rc.steps and os.path.exists(summary_path):
      ckpt.close()
      print(f"[{stage}] already trained to step {start}: skipping", flush=True)
      with open(summary_path) as f:
        return json.load(f)
    print(f"[{stage}] resuming from step {start} ({directory})", flush=True)
  else:
    start = 0
    state = state_lib.new_state(init(abstract_params, shardings["params"]), optimizer, shardings, cfg.seed)
  os.makedirs(directory, exist_ok=True)
  write_json(os.path.join(directory, "config.json"), cfg.to_dict())
  ref_params = init(abstract_params, shardings["params"]) if rc.kl_coef or rc.track_kl else None

  engine = Engine(graphdef, state["params"], cfg.model.max_seq_len)
  tool_engine = _tool_engine(rc, engine, tokenizer)
  sharded = lambda fn: parallel.with_activation_sharding(fn, mesh, rules)
  logp_fn = jax.jit(sharded(make_logp_fn(graphdef, rc.temperature)))
  update = jax.jit(sharded(make_update_step(
      graphdef, optimizer, temperature=rc.temperature, eps_low=rc.eps_low, eps_high=rc.eps_high, agg=rc.loss_agg,
      max_len=rc.max_new_tokens, kl_coef=rc.kl_coef, kl_estimator=rc.kl_estimator)),
      out_shardings=(shardings, None), donate_argnums=(0,))
  to_device = lambda host: {k: jax.make_array_from_process_local_data(
      parallel.batch_sharding(mesh, rules, ndim=v.ndim), v) for k, v in host.items()}
  writer = MetricWriter(workdir, stage, rc.tensorboard)
  truncate_metrics(writer.path, start)
  tokens_total = max((r.get("rl/tokens_total", 0.0) for r in read_metrics(writer.path)), default=0.0)
  lr_at = optim.schedule(rc.optim, total_updates, rc.optim.lr)
  sampling = SamplingParams(max_new_tokens=rc.max_new_tokens, temperature=rc.temperature, top_k=rc.top_k,
                            top_p=rc.top_p, stop_ids=stops)
  ks = [int(k) for k in str(rc.eval_ks).split(",") if k.strip()]

  def evaluate(step: int, as_stage: str | None = None) -> dict:
    engine.params = state["params"]
    m = rl_eval.evaluate_policy(engine, tokenizer, task, held_out, dataclasses.replace(sampling, seed=cfg.seed + 7919),
                                num_samples=rc.eval_samples, ks=ks, batch_size=rc.rollout_batch or rows,
                                template=template, tool_engine=tool_engine)  # the same draws at every eval
    writer.write(step, results.flatten(task.name, m))
    if as_stage:
      results.merge_results(workdir, results.flatten(f"rl_{task.name}@{as_stage}", m))
    print(f"[{stage}] step {step} held-out: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()), flush=True)
    return m

  step, t0, last, final_eval = start, time.time(), {}, {}
  try:
    if start == 0 and held_out:
      evaluate(0, init_stage)
    while step < rc.steps:
      t_step = time.time()
      engine.params = state["params"]
      examples = [pool[(step * N + j) % len(pool)] for j in range(N)]
      step_sampling = dataclasses.replace(sampling, seed=cfg.seed * 100003 + step)
      ro = rollouts_lib.sample_groups(engine, tokenizer, examples, G, step_sampling, reward_fn, template=template,
                                      batch_size=rc.rollout_batch, tool_engine=tool_engine)
      t_rollout = time.time()
      host, m = rollouts_lib.build_batch(ro, seq_len, truncation=rc.truncation, penalty=rc.truncation_penalty,
                                         drop_zero_variance=rc.drop_zero_variance, scale=rc.advantage_scale)
      completion = host.pop("completion")
      old_logp, entropy = jax.device_get(logp_fn(state["params"], to_device(host)))
      host["old_logp"] = np.asarray(old_logp)
      m["rl/entropy"] = _masked_mean(np.asarray(entropy), completion)
      if ref_params is not None:
        ref_logp = np.asarray(jax.device_get(logp_fn(ref_params, to_device(host))[0]))
        m["rl/kl"] = _masked_mean(np.asarray(grpo.kl_estimate(host["old_logp"], ref_logp, rc.kl_estimator)),
                                  completion)
        if rc.kl_coef:
          host["ref_logp"] = ref_logp
      updates = []
      if host["mask"].any():
        for epoch in range(rc.epochs):
          order = np.random.default_rng([cfg.seed, step, epoch]).permutation(rows)
          for idx in np.split(order, rc.minibatches):
            state, um = update(state, to_device({k: v[idx] for k, v in host.items()}))
            updates.append(um)
      step += 1
      updates = jax.device_get(updates)
      if any(int(u["nonfinite"]) for u in updates):
        raise NonFiniteLoss(f"non-finite RL loss or gradient at step {step}; the update was not applied and the "
                            f"checkpoints in {directory} are intact. Lower rl.optim.lr or raise rl.optim.grad_clip")
      for key in ("rl/loss", "rl/clip_frac", "rl/ratio_mean", "train/grad_norm"):
        if updates:
          m[key] = float(np.mean([u[key] for u in updates]))
      tokens_total += m["rl/tokens"]
      m.update({"train/lr": float(lr_at(max(step * rc.epochs * rc.minibatches - 1, 0))),
                "rl/tokens_total": tokens_total, "perf/rollout_s": t_rollout - t_step,
                "perf/update_s": time.time() - t_rollout, "perf/step_s": time.time() - t_step})
      if rc.samples_every and (step % rc.samples_every == 0 or step in (1, rc.steps)):
        rl_eval.write_rollout_samples(workdir, step, ro)
      if held_out and ((rc.eval_every and step % rc.eval_every == 0) or step == rc.steps):
        final_eval = evaluate(step, stage if step == rc.steps else None)
      if ckpt.manager.should_save(step):
        ckpt.save(step, state, None, meta)
      if step % rc.log_every == 0 or step == rc.steps:
        writer.write(step, m)
        print(_line(stage, step, rc.steps, m, (time.time() - t0) / (step - start)), file=sys.stderr, flush=True)
      last = m
  except KeyboardInterrupt:
    if step not in ckpt.steps():
      ckpt.save(step, state, None, meta, force=True)
    ckpt.close()
    print(f"[{stage}] interrupted: saved step {step}; run the same command to resume", flush=True)
    raise
  if step not in ckpt.steps():
    ckpt.save(step, state, None, meta, force=True)
  ckpt.close()
  if held_out and not final_eval:  # stopped after its last checkpoint but before the final evaluation
    final_eval = evaluate(step, stage)
  writer.close()
  summary = {"stage": stage, "init_stage": init_stage, "steps": step, "tokens": int(tokens_total),
             "seconds": time.time() - t0, **_reward_trend(read_metrics(writer.path)),
             **{k: v for k, v in last.items() if not k.startswith("perf/")},
             **results.flatten(task.name, final_eval)}
  write_json(summary_path, summary)
  if held_out:
    rl_eval.write_before_after(workdir, task.name, init_stage, stage)
  return summary
