"""Checks that a post-training experiment's inputs (tokenizer, base model) exist in the workdir."""

import os

from llm_jax.train.loop import stage_dir


def require_stage(workdir: str, stage: str, hint: str = "configs/nano.py") -> str:
  """The workdir's tokenizer dir; SystemExit with a one-line hint when it or `stage` is missing."""
  tokenizer_dir = os.path.join(workdir, "tokenizer")
  have_stage = os.path.exists(os.path.join(stage_dir(workdir, stage), "summary.json"))
  if not os.path.isdir(tokenizer_dir) or not have_stage:
    missing = "tokenizer/" if not os.path.isdir(tokenizer_dir) else f"a trained checkpoints/{stage}"
    raise SystemExit(f"error: {workdir} has no {missing}; run python -m llm_jax.main --config={hint} "
                     f"--workdir={workdir} first")
  return tokenizer_dir
