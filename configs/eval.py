"""Evaluate a trained stage of a workdir (experiments/eval.py); results merge into eval.json.

  python -m llm_jax.main --config=configs/eval.py --workdir=runs/nano --config.eval.stage=sft \
      --config.eval.tasks=loss,arithmetic,mc:my_items.jsonl
Preset: the stage to evaluate (configs/eval.py:base). The model comes from the stage's own config.
"""

from llm_jax import tasks
from llm_jax.config import base_config
from llm_jax.eval import run as eval_run


def get_config(stage: str = "sft"):
  c = base_config()
  c.experiment = "experiments/eval.py"
  c.tasks = tasks.default_config()  # task options; the held-out split depends on `seed`
  c.eval = eval_run.default_config()  # eval.stage, eval.tasks, sampling and batch settings
  c.eval.stage = stage
  if stage == "base":  # a base model cannot chat: loss and multiple choice only
    c.eval.tasks = "loss"
  return c
