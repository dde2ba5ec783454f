"""The training loop shared by pretraining and fine-tuning stages: resume, log, evaluate, checkpoint."""

import json
import logging
import os
import time
from typing import Callable, Iterator

import jax
import ml_collections
import numpy as np

from llm_jax import memory, parallel
from llm_jax.model.config import shape_keys
from llm_jax.train import flops, optim
from llm_jax.train import state as state_lib
from llm_jax.train.checkpoint import Checkpointer, abstract_like, write_json
from llm_jax.train.metrics import MetricWriter, Progress, truncate_metrics
from llm_jax.train.step import make_eval_step, make_train_step


def default_config() -> ml_collections.ConfigDict:
  """The `train` section: loop settings plus the optimizer's (see optim.default_config)."""
  c = optim.default_config()
  c.steps = 5000  # optimizer steps
  c.batch_size = 512  # global batch, in sequences, summed over hosts and micro-steps
  c.seq_len = 1024
  c.grad_accum = 1  # micro-steps per optimizer step (batch_size must divide by it)
  c.z_loss = 0.0  # weight of log(Z)^2 (PaLM's z-loss); 0 disables
  c.max_nonfinite_skips = 0  # 0: stop at a NaN/Inf loss; N: skip up to N consecutive bad steps
  c.log_every = 10
  c.eval_every = 250
  c.eval_batches = 20  # validation batches per evaluation (of batch_size sequences)
  c.tensorboard = True
  c.memory_limit_gb = 0.0  # per-device memory for the pre-compile fit check; 0: the accelerator's (none on CPU)
  return c


class NonFiniteLoss(RuntimeError):
  pass


def _check_batch(train_cfg, mesh, rules) -> int:
  """Per-process batch size; one-line errors when the batch does not split evenly."""
  devices = parallel.batch_divisor(mesh, rules)
  per_micro = train_cfg.batch_size // max(train_cfg.grad_accum, 1)
  if train_cfg.batch_size % train_cfg.grad_accum:
    raise ValueError(f"train.batch_size={train_cfg.batch_size} does not divide by train.grad_accum="
                     f"{train_cfg.grad_accum}")
  if per_micro % devices:
    raise ValueError(f"train.batch_size/grad_accum={per_micro} does not divide across the {devices} "
                     "batch-sharded devices; change train.batch_size, train.grad_accum or the mesh")
  if train_cfg.batch_size % jax.process_count():
    raise ValueError(f"train.batch_size={train_cfg.batch_size} does not divide by {jax.process_count()} hosts")
  return train_cfg.batch_size // jax.process_count()


def stage_dir(workdir: str, stage: str) -> str:
  return os.path.join(workdir, "checkpoints", stage)


def train(cfg, workdir: str, stage: str, make_train_iter: Callable[[int], Iterator],
          make_val_iter: Callable[[int], Iterator] | None, token_bytes: np.ndarray,
          initial_params: Callable | None = None) -> dict:
  """Run (or resume, or skip if finished) one training stage; returns its summary.

  make_train_iter(local_batch) / make_val_iter(local_batch): this host's data iterators yielding dicts of
  int32[local_batch, seq_len] (tokens, targets, positions, segment_ids) and loss_mask; the train iterator
  has get_state/set_state. initial_params(abstract_params, shardings) supplies starting weights (e.g. the
  base model for SFT); otherwise they are random. token_bytes: int[vocab] bytes per token, for bits/byte.
  """
  tc, directory = cfg.train, stage_dir(workdir, stage)
  summary_path = os.path.join(directory, "summary.json")
  mesh, rules = parallel.make_mesh(cfg.mesh), parallel.rules_dict(cfg.mesh)
  local_batch = _check_batch(tc, mesh, rules)
  graphdef, abstract_params = state_lib.model_graphdef_and_shapes(cfg.model)
  optimizer = optim.make_optimizer(tc, tc.steps)
  abstract_state, shardings = state_lib.state_shapes_and_shardings(abstract_params, optimizer, mesh, rules)
  estimate, limit = memory.estimate(cfg, abstract_state, shardings, mesh), memory.device_limit(tc)
  if jax.process_index() == 0:
    print(f"[{stage}] {memory.format_estimate(estimate, limit)}", flush=True)
  memory.check_fits(estimate, limit)
  meta = {"model": shape_keys(cfg.model), "stage": stage}

  ckpt = Checkpointer(directory, cfg.checkpoint)
  train_iter = make_train_iter(local_batch)
  restored = ckpt.restore_latest(abstract_like(abstract_state, shardings), expect_meta=meta)
  if restored is not None:
    start_step, state, data_state, _ = restored
    if data_state is not None:
      train_iter.set_state(data_state)
    print(f"[{stage}] resuming from step {start_step} ({directory})", flush=True)
    if start_step >= tc.steps and os.path.exists(summary_path):
      ckpt.close()
      print(f"[{stage}] already trained to step {start_step}: skipping", flush=True)
      with open(summary_path) as f:
        return json.load(f)
  else:
    start_step = 0
    params = (initial_params(abstract_params, shardings["params"]) if initial_params
              else state_lib.init_params(cfg.model, cfg.seed, shardings["params"]))
    state = state_lib.new_state(params, optimizer, shardings, cfg.seed)
  if jax.process_index() == 0:
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, "config.json"), cfg.to_dict())

  batch_sh = parallel.batch_sharding(mesh, rules, ndim=3, leading=1)
  sharded = lambda fn: parallel.with_activation_sharding(fn, mesh, rules)  # activations pinned by name
  step_fn = jax.jit(sharded(make_train_step(graphdef, optimizer, tc.z_loss)), in_shardings=(shardings, batch_sh),
                    out_shardings=(shardings, None), donate_argnums=(0,))
  eval_fn = jax.jit(sharded(make_eval_step(graphdef)))
  writer = MetricWriter(workdir, stage, tc.tensorboard)
  truncate_metrics(writer.path, start_step)
  progress = Progress(stage, tc.steps, start_step)
  lr_at = optim.schedule(tc, tc.steps, tc.lr)
  token_bytes = np.asarray(token_bytes, np.float32)
  flops_per_step = flops.flops_per_token(cfg.model, tc.seq_len) * tc.batch_size * tc.seq_len
  peak = flops.device_peak_flops() * jax.device_count()

  def to_device(local):
    arrays = {k: np.asarray(local[k]).reshape(tc.grad_accum, -1, *np.shape(local[k])[1:])
              for k in ("tokens", "targets", "positions", "segment_ids", "loss_mask")}
    return parallel.global_batch(arrays, batch_sh)

  def evaluate(params):
    if make_val_iter is None:
      return {}
    sums = np.zeros(3)
    for i, local in enumerate(make_val_iter(local_batch)):
      if i >= tc.eval_batches:
        break
      local = dict(local, target_bytes=token_bytes[np.asarray(local["targets"])])
      arrays = parallel.global_batch({k: local[k] for k in ("tokens", "targets", "positions", "segment_ids",
                                                            "loss_mask", "target_bytes")},
                                     parallel.batch_sharding(mesh, rules))
      sums += np.array(jax.device_get(eval_fn(state["params"], arrays)), np.float64)
    loss = sums[0] / max(sums[1], 1)
    return {"val/loss": float(loss), "val/bpb": float(sums[0] / np.log(2) / max(sums[2], 1)),
            "val/ppl": float(np.exp(loss))}

  step, skips, pending, t_last, last = start_step, 0, None, time.time(), {}
  val, interval_losses = {}, []
  try:
    while step < tc.steps:
      state, metrics = step_fn(state, to_device(next(train_iter)))
      step += 1
      interval_losses.append(metrics["train/loss"])
      if pending is not None:  # inspect the previous step while this one runs
        skips = _check_finite(pending, skips, tc.max_nonfinite_skips, directory)
      pending = (step, metrics)
      if ckpt.manager.should_save(step):
        ckpt.save(step, state, train_iter.get_state(), meta)
      if step % tc.log_every == 0 or step == tc.steps:
        skips = _check_finite(pending, skips, tc.max_nonfinite_skips, directory)
        pending = None
        if tc.eval_every and (step % tc.eval_every == 0 or step == tc.steps):
          val = evaluate(state["params"])
        now = time.time()
        steps_done = tc.log_every if step % tc.log_every == 0 else step % tc.log_every
        tokens_per_s = steps_done * tc.batch_size * tc.seq_len / max(now - t_last, 1e-9)
        t_last = now
        last = {k: float(v) for k, v in jax.device_get(metrics).items() if k != "nonfinite"}
        losses = np.asarray(jax.device_get(interval_losses))
        last["train/loss"] = float(losses[np.isfinite(losses)].mean()) if np.isfinite(losses).any() else float("nan")
        interval_losses = []  # train/loss is the mean over the log interval
        last.update(val, **{"train/lr": float(lr_at(step - 1)), "perf/tokens_per_s": tokens_per_s,
                            "perf/mfu": tokens_per_s / (tc.batch_size * tc.seq_len) * flops_per_step / peak})
        val = {}
        writer.write(step, last)
        progress.log(step, last)
  except KeyboardInterrupt:
    if step not in ckpt.steps():
      ckpt.save(step, state, train_iter.get_state(), meta, force=True)
    ckpt.close()
    print(f"[{stage}] interrupted: saved step {step}; run the same command to resume", flush=True)
    raise
  if pending is not None:
    _check_finite(pending, skips, tc.max_nonfinite_skips, directory)
  if step not in ckpt.steps():
    ckpt.save(step, state, train_iter.get_state(), meta, force=True)
  ckpt.close()
  writer.close()
  summary = {"stage": stage, "steps": step, "tokens": step * tc.batch_size * tc.seq_len,
             "seconds": time.time() - progress.t0, **last}
  if jax.process_index() == 0:
    write_json(summary_path, summary)
  return summary


def _check_finite(pending, skips: int, max_skips: int, directory: str) -> int:
  step, metrics = pending
  if not int(jax.device_get(metrics["nonfinite"])):
    return 0
  skips += 1
  if skips > max_skips:
    raise NonFiniteLoss(f"non-finite loss or gradient at step {step} (loss={float(metrics['train/loss'])}); "
                        f"the update was not applied and the checkpoints in {directory} are intact. Lower "
                        "train.lr, enable train.z_loss, or set train.max_nonfinite_skips to skip bad steps")
  logging.warning("non-finite loss at step %d: update skipped (%d in a row)", step, skips)
  return skips
