"""The run's report card: workdir/report.md with a table per stage, data statistics, samples and plots."""

import glob
import json
import os

from llm_jax.eval.results import as_table, read_results
from llm_jax.train.metrics import format_duration, read_metrics

CURVES = (("train/loss", "val/loss"), ("val/bpb",), ("rl/reward_mean",), ("rl/response_len",),
          # preference stages (reward model, DPO, RLHF): accuracy, implicit-reward margin, log-probs, KL, gold
          ("train/accuracy", "val/accuracy"), ("train/reward_margin", "val/reward_margin"),
          ("val/chosen_logp", "val/rejected_logp"), ("rl/kl",), ("rl/kl_seq", "val/kl_seq"),
          ("val/reward_mean", "val/gold_mean"))


def plot_stage(workdir: str, stage: str) -> list[str]:
  """PNG plots of a stage's metric curves under workdir/plots; returns their paths relative to workdir."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  rows = read_metrics(os.path.join(workdir, "metrics", f"{stage}.jsonl"))
  paths = []
  os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
  for keys in CURVES:
    series = {k: [(r["step"], r[k]) for r in rows if k in r] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
      continue
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, points in series.items():
      ax.plot(*zip(*points), label=k, marker="." if len(points) < 30 else None)
    ax.set_xlabel("step")
    ax.set_title(f"{stage}: {', '.join(series)}")
    ax.grid(alpha=0.3)
    ax.legend()
    name = f"plots/{stage}_{keys[0].replace('/', '_')}.png"
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, name), dpi=110)
    plt.close(fig)
    paths.append(name)
  return paths


def _fmt(v) -> str:
  return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_report(workdir: str) -> str:
  """(Re)write report.md from what the run's stages left in the workdir; returns its path."""
  lines = ["# Run report", "", f"Workdir: `{workdir}`", ""]
  stats_path = os.path.join(workdir, "data", "stats.json")
  if os.path.exists(stats_path):
    with open(stats_path) as f:
      stats = json.load(f)
    lines += ["## Data", "", "| split | " + " | ".join(_data_columns(stats)) + " |",
              "|---|" + "---|" * len(_data_columns(stats))]
    for split, row in stats.items():
      if isinstance(row, dict):
        lines.append(f"| {split} | " + " | ".join(_fmt(row.get(c, "")) for c in _data_columns(stats)) + " |")
    lines.append("")
  summaries = sorted(glob.glob(os.path.join(workdir, "checkpoints", "*", "summary.json")), key=os.path.getmtime)
  for path in summaries:
    with open(path) as f:
      summary = json.load(f)
    stage = summary.get("stage", os.path.basename(os.path.dirname(path)))
    lines += [f"## Stage `{stage}`", "", "| metric | value |", "|---|---|"]
    for k, v in summary.items():
      if k == "seconds":
        v = format_duration(v)
      if k != "stage":
        lines.append(f"| {k} | {_fmt(v)} |")
    lines.append("")
    lines += _conversation_data(os.path.join(os.path.dirname(path), "data.json"))
    lines += [f"![{p}]({p})" for p in plot_stage(workdir, stage)] + [""]
    sample_path = os.path.join(workdir, "samples", f"{stage}.txt")
    if os.path.exists(sample_path):
      with open(sample_path) as f:
        lines += ["Samples:", "", "```", f.read().strip(), "```", ""]
  evals = read_results(workdir)
  if evals:
    lines += ["## Evaluation", "", "From `eval.json` (keys `eval/<task>/<metric>`):", ""] + as_table(evals) + [""]
  for path in sorted(glob.glob(os.path.join(workdir, "sections", "*.md"))):  # written by experiments' analyses
    with open(path, encoding="utf-8") as f:
      lines += [f.read().strip(), ""]
  out = os.path.join(workdir, "report.md")
  with open(out, "w") as f:
    f.write("\n".join(lines))
  return out


def _conversation_data(path: str) -> list[str]:
  """Lines on a fine-tuning stage's packed conversations (written by posttrain/sft.py), if any."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    data = json.load(f)
  lines = []
  for split, s in data.items():
    if s:
      lines.append(f"- {split}: {s['conversations']} conversations in {s['rows']} rows ({s['fill']:.0%} full), "
                   f"{s['loss_tokens']} loss tokens; skipped: {s['skipped'] or 'none'}")
  return lines + [""]


def _data_columns(stats: dict) -> list[str]:
  cols = []
  for row in stats.values():
    if isinstance(row, dict):
      cols += [k for k in row if k not in cols and not isinstance(row[k], (dict, list))]
  return cols
