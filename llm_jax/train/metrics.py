"""Metric sinks (metrics/<stage>.jsonl and TensorBoard under tb/) and the console progress line."""

import json
import math
import os
import sys
import time

import jax


class MetricWriter:
  """Writes scalars to jsonl and TensorBoard; only process 0 writes."""

  def __init__(self, workdir: str, stage: str, tensorboard: bool = True):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, "metrics", f"{stage}.jsonl")
    self.tb = None
    if not self.active:
      return
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    if tensorboard:
      from tensorboardX import SummaryWriter
      self.tb = SummaryWriter(os.path.join(workdir, "tb", stage))

  def write(self, step: int, scalars: dict) -> None:
    if not self.active:
      return
    clean = {k: float(v) for k, v in scalars.items()}
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **clean}) + "\n")
    if self.tb is not None:
      for k, v in clean.items():
        if math.isfinite(v):
          self.tb.add_scalar(k, v, int(step))
      self.tb.flush()

  def close(self) -> None:
    if self.tb is not None:
      self.tb.close()


def read_metrics(path: str, after_step: int | None = None) -> list[dict]:
  """Records of a metrics jsonl; with `after_step`, drops lines a resumed run will write again."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return [r for r in rows if after_step is None or r["step"] <= after_step]


def truncate_metrics(path: str, last_step: int) -> None:
  """On resume, forget metric lines from steps after the checkpoint (they will be redone)."""
  rows = read_metrics(path, after_step=last_step)
  if os.path.exists(path):
    with open(path, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)


def format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
  """One console line per log interval: step, percent, metrics, rate, ETA."""

  def __init__(self, stage: str, total_steps: int, start_step: int):
    self.stage, self.total, self.start = stage, total_steps, start_step
    self.t0 = time.time()
    self.active = jax.process_index() == 0

  def line(self, step: int, scalars: dict) -> str:
    elapsed = time.time() - self.t0
    done = max(step - self.start, 1)
    eta = elapsed / done * (self.total - step)
    parts = [f"[{self.stage}] step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%)"]
    for key, fmt in (("train/loss", "loss {:.4f}"), ("val/loss", "val {:.4f}"), ("val/bpb", "bpb {:.3f}"),
                     ("train/grad_norm", "gnorm {:.2f}"), ("train/lr", "lr {:.2e}"),
                     ("perf/tokens_per_s", "{:,.0f} tok/s"), ("perf/mfu", "mfu {:.1%}")):
      if key in scalars:
        parts.append(fmt.format(scalars[key]))
    parts.append(f"eta {format_duration(eta)}")
    return " | ".join(parts)

  def log(self, step: int, scalars: dict) -> None:
    if self.active:
      print(self.line(step, scalars), file=sys.stderr, flush=True)
