"""workdir/eval.json: every evaluation's numbers in one flat dict keyed `eval/<task>/<metric>`.

Each evaluation merges its keys into the file (later runs overwrite the same keys), so several
stages and experiments can add to one report.
"""

import json
import os

from llm_jax.train.checkpoint import write_json

FILE = "eval.json"


def read_results(workdir: str) -> dict:
  path = os.path.join(workdir, FILE)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def merge_results(workdir: str, results: dict) -> dict:
  """Merge `results` into workdir/eval.json; returns the merged dict."""
  bad = [k for k in results if not k.startswith("eval/") or k.count("/") < 2]
  if bad:
    raise ValueError(f"eval result keys must look like eval/<task>/<metric>; got {bad}")
  merged = {**read_results(workdir), **results}
  os.makedirs(workdir, exist_ok=True)
  write_json(os.path.join(workdir, FILE), dict(sorted(merged.items())))
  return merged


def flatten(task: str, metrics: dict) -> dict:
  """{metric: value} of one task -> {eval/<task>/<metric>: value} (numbers only)."""
  return {f"eval/{task}/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}


def as_table(results: dict) -> list[str]:
  """Markdown lines: one row per task, one column per metric."""
  rows: dict[str, dict] = {}
  for key, value in results.items():
    parts = key.split("/", 2)
    task, metric = (parts[1], parts[2]) if len(parts) == 3 else ("other", key)
    rows.setdefault(task, {})[metric] = value
  columns = list(dict.fromkeys(m for r in rows.values() for m in r))
  fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
  lines = ["| task | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
  lines += [f"| {task} | " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for task, r in rows.items()]
  return lines
