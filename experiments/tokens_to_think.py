"""Tokens to think: does a model answer better when it works the problem out before the answer?

The same base model is fine-tuned twice on the same multi-step arithmetic problems, once with replies
that state `#### answer` first and the working after (answer_first), once with the working first
(steps_first). Both are scored on the same held-out problems; eval.json gets
eval/arithmetic_answer_first/accuracy and eval/arithmetic_steps_first/accuracy.
  python -m llm_jax.main --config=configs/sft.py:tokens_to_think --workdir=runs/nano
"""

import ml_collections

from llm_jax import config as config_lib
from llm_jax import stages as stages_lib
from llm_jax import tasks as tasks_lib
from llm_jax.eval.report import write_report
from llm_jax.eval.run import run_eval
from llm_jax.posttrain.prerequisites import require_stage
from llm_jax.posttrain.sft import finetune
from llm_jax.tokenizer import load_tokenizer

VARIANTS = (("answer_first", True), ("steps_first", False))
STAGES = ("sft_answer_first", "sft_steps_first", "eval", "report")


def variant_config(config, answer_first: bool) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(config.to_dict())
  c.tasks.arithmetic.answer_first = answer_first
  return c


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  tokenizer = load_tokenizer(require_stage(workdir, config.init.stage))
  config = config_lib.resolve(config, tokenizer)
  for name, answer_first in VARIANTS:
    if f"sft_{name}" in todo:
      c = variant_config(config, answer_first)
      task = tasks_lib.make_task("arithmetic", c.tasks, c.seed)  # same problems for both variants
      finetune(c, workdir, tokenizer, task.conversations("train", c.sft.num_conversations),
               task.conversations("test", c.sft.val_conversations), init_stage=c.init.stage, stage=f"sft_{name}")
  if "eval" in todo:
    accuracy = {}
    for name, answer_first in VARIANTS:
      c = variant_config(config, answer_first)
      c.eval.tasks = "arithmetic"
      accuracy[name] = run_eval(c, workdir, stage=f"sft_{name}", suffix=f"_{name}")[
          f"eval/arithmetic_{name}/accuracy"]
    print("[tokens_to_think] held-out accuracy: " + ", ".join(f"{k} {v:.1%}" for k, v in accuracy.items()),
          flush=True)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
