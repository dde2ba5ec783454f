"""The loop shared by the preference stages (reward model, DPO, PPO): resume, log, evaluate, checkpoint,
stop early, and skip a finished stage. What one step does is the caller's `step(state, i)`.

A stage writes checkpoints/<stage>/ (orbax: the state dict, whose "params" are what later stages and
`infer.load.load_stage` read), config.json, summary.json and metrics/<stage>.jsonl.
"""

import json
import os
import sys
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np

from llm_jax import parallel
from llm_jax.model.config import shape_keys
from llm_jax.train import optim
from llm_jax.train.checkpoint import Checkpointer, write_json
from llm_jax.train.loop import NonFiniteLoss, stage_dir
from llm_jax.train.metrics import MetricWriter, Progress, truncate_metrics


# metrics shown on the console line besides Progress's own (loss, grad norm, lr, ...)
SHOWN = (("train/accuracy", "acc {:.3f}"), ("val/accuracy", "val acc {:.3f}"),
         ("val/gold_accuracy", "val gold acc {:.3f}"), ("val/reward_acc", "val acc {:.3f}"),
         ("val/reward_margin", "val margin {:.3f}"), ("rl/reward_mean", "reward {:.3f}"), ("rl/kl_seq", "kl {:.3f}"),
         ("rl/response_len", "len {:.0f}"), ("rl/gold_mean", "gold {:.3f}"), ("val/reward_mean", "val reward {:.3f}"),
         ("val/kl_seq", "val kl {:.3f}"), ("val/gold_mean", "val gold {:.3f}"))


def default_config() -> ml_collections.ConfigDict:
  """A preference stage's `train` section: the optimizer's keys (optim.default_config) plus these."""
  c = optim.default_config()
  c.update(dict(lr=1e-4, warmup_steps=10, min_lr_ratio=0.1, weight_decay=0.0))
  c.steps = 200  # optimizer steps (PPO: iterations of rollouts + updates)
  c.batch_size = 16  # rankings (reward model), pairs (DPO) or prompts (PPO) per step
  c.log_every = 10
  c.eval_every = 50  # held-out evaluation interval; 0: only at the end
  c.eval_batches = 0  # held-out batches per evaluation; 0: all
  c.checkpoint_every = 0  # 0: the config's checkpoint.every_steps
  c.tensorboard = True
  return c


def _summary_path(workdir: str, stage: str) -> str:
  return os.path.join(stage_dir(workdir, stage), "summary.json")


def finished(workdir: str, stage: str, steps: int = 0) -> dict | None:
  """The stage's summary if it ran `steps` (or stopped early by its rule), else None."""
  path = _summary_path(workdir, stage)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    summary = json.load(f)
  return summary if summary.get("steps", 0) >= steps or "stopped" in summary else None


def run_stage(cfg, workdir: str, stage: str, train_cfg, abstract_state, init_state: Callable[[], dict],
              step: Callable[[dict, int], tuple[dict, dict]], evaluate: Callable[[dict], dict] | None = None,
              should_stop: Callable[[int, dict], str | None] | None = None) -> dict:
  """Run (or resume, or skip) `train_cfg.steps` calls of `step(state, i) -> (state, metrics)`.

  abstract_state: ShapeDtypeStructs with shardings (the restore target). init_state(): the state of a
  fresh run. evaluate(state) -> held-out metrics, run every eval_every steps (and at step 0 and the end).
  should_stop(step, metrics) -> a reason to stop early (e.g. a KL budget), checked at log and eval points.
  A non-finite `train/loss` stops the stage before the step that produced it is logged or saved, so the
  checkpoints stay good and the same command (with a lower rate) resumes from the last one.
  """
  done = finished(workdir, stage, train_cfg.steps)
  if done is not None:
    print(f"[{stage}] already finished ({done.get('steps')} steps): skipping", flush=True)
    return done
  directory = stage_dir(workdir, stage)
  ckpt_cfg = ml_collections.ConfigDict(cfg.checkpoint.to_dict())
  if train_cfg.checkpoint_every:
    ckpt_cfg.every_steps = train_cfg.checkpoint_every
  meta = {"model": shape_keys(cfg.model), "stage": stage}
  ckpt = Checkpointer(directory, ckpt_cfg)
  restored = ckpt.restore_latest(abstract_state, expect_meta=meta)
  if restored is not None:
    start, state = restored[0], restored[1]
    print(f"[{stage}] resuming from step {start} ({directory})", flush=True)
  else:
    start, state = 0, init_state()
  if jax.process_index() == 0:
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, "config.json"), cfg.to_dict())
  writer = MetricWriter(workdir, stage, train_cfg.tensorboard)
  truncate_metrics(writer.path, start)
  progress = Progress(stage, train_cfg.steps, start)
  last, stopped, i = {}, None, start

  def require_finite(at: int, metrics: dict) -> None:
    loss = metrics.get("train/loss", 0.0)
    if not np.isfinite(loss):
      ckpt.close()
      raise NonFiniteLoss(f"[{stage}] non-finite loss ({loss}) at step {at}; nothing after step "
                          f"{max(ckpt.steps(), default=0)} was saved: lower the stage's train.lr (or raise "
                          "train.warmup_steps) and run the same command to resume")

  def held_out(state) -> dict:
    return {k: float(v) for k, v in jax.device_get(evaluate(state)).items()}

  def check(at: int, metrics: dict) -> str | None:
    writer.write(at, metrics)
    if progress.active:
      head, _, eta = progress.line(at, metrics).rpartition(" | eta ")
      extra = [fmt.format(metrics[k]) for k, fmt in SHOWN if k in metrics]
      print(" | ".join([head, *extra, f"eta {eta}"]), file=sys.stderr, flush=True)
    return should_stop(at, metrics) if should_stop else None

  if evaluate is not None and start == 0:
    stopped = check(0, held_out(state))
  try:
    while i < train_cfg.steps and stopped is None:
      state, metrics = step(state, i)
      i += 1
      at_end, logging_now = i == train_cfg.steps, i % train_cfg.log_every == 0
      if ckpt.manager.should_save(i) or at_end or logging_now:
        fetched = {k: float(v) for k, v in jax.device_get(metrics).items()}
        require_finite(i, fetched)
      if ckpt.manager.should_save(i):
        ckpt.save(i, state, None, meta)
      if logging_now or at_end:
        last = fetched
        if evaluate is not None and (at_end or (train_cfg.eval_every and i % train_cfg.eval_every == 0)):
          last.update(held_out(state))
        stopped = check(i, last)
  except KeyboardInterrupt:
    if i not in ckpt.steps():
      ckpt.save(i, state, None, meta, force=True)
    ckpt.close()
    print(f"[{stage}] interrupted: saved step {i}; run the same command to resume", flush=True)
    raise
  if i not in ckpt.steps():
    ckpt.save(i, state, None, meta, force=True)
  ckpt.close()
  writer.close()
  summary = {"stage": stage, "steps": i, "seconds": time.time() - progress.t0, **last}
  if stopped is not None:
    summary["stopped"] = stopped
    print(f"[{stage}] stopped at step {i}: {stopped}", flush=True)
  if jax.process_index() == 0:
    write_json(_summary_path(workdir, stage), summary)
  return summary


def shard_batch(batch: dict, mesh, rules) -> dict:
  """A global batch (every host holds all rows) -> jax Arrays sharded on their leading batch axis; each
  process contributes its own contiguous share of rows."""
  out = {}
  for k, v in batch.items():
    v = np.asarray(v)
    rows = v.shape[0] // jax.process_count()
    local = v[jax.process_index() * rows:(jax.process_index() + 1) * rows]
    out[k] = parallel.global_batch({k: local}, parallel.batch_sharding(mesh, rules, ndim=v.ndim))[k]
  return out


def check_batch(batch_size: int, mesh, rules, what: str) -> None:
  devices = parallel.batch_divisor(mesh, rules)
  if batch_size % max(devices, jax.process_count()):
    raise ValueError(f"{what}={batch_size} does not divide across the {devices} batch-sharded devices "
                     f"({jax.process_count()} hosts); change it or the mesh")
