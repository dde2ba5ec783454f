"""Evaluation of several trained stages side by side (e.g. before and after RL): each stage runs the
eval stage's tasks (eval/run.py) with results keyed eval/<task>@<stage>/<metric>, so report.md's table
has one row per task and stage. A stage already evaluated on every task (its keys are in eval.json) or
not trained in this workdir is skipped."""

import os
from collections.abc import Sequence

from llm_jax.eval.results import read_results
from llm_jax.eval.run import run_eval
from llm_jax.train.loop import stage_dir


def task_names(tasks: str) -> list[str]:
  """Result names of an eval.tasks string ('mc:arc_easy' reports under its set name)."""
  names = []
  for t in (t.strip() for t in tasks.split(",") if t.strip()):
    kind, _, arg = t.partition(":")
    names.append(os.path.splitext(os.path.basename(arg))[0] if arg else kind)
  return names


def evaluate_stages(config, workdir: str, stages: Sequence[str]) -> dict:
  """Run config.eval.tasks on each of `stages` that needs it; returns the new results."""
  out = {}
  for stage in stages:
    have = read_results(workdir)
    if not os.path.exists(os.path.join(stage_dir(workdir, stage), "summary.json")):
      print(f"[eval] no trained stage {stage!r}: skipping it", flush=True)
    elif all(any(k.startswith(f"eval/{n}@{stage}/") for k in have) for n in task_names(config.eval.tasks)):
      print(f"[eval] {stage} already evaluated: skipping", flush=True)
    else:
      out.update(run_eval(config, workdir, stage=stage, suffix=f"@{stage}"))
  return out
