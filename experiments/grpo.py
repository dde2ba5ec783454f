"""RL on top of a fine-tuned model: checkpoints/<init.stage> -> GRPO (or rejection sampling) ->
checkpoints/<rl.stage> -> greedy evaluation of both -> chat samples -> report.md.

The RL stage also writes held-out pass@k and reply length before and after into eval.json
(eval/rl_<task>@<stage>/...) and a before/after table into the report. Stages resume or skip like any.
"""

import os

from llm_jax import config as config_lib
from llm_jax import stages as stages_lib
from llm_jax.eval.compare import evaluate_stages
from llm_jax.eval.report import write_report
from llm_jax.posttrain.config import stage_config
from llm_jax.posttrain.prerequisites import require_stage
from llm_jax.posttrain.rl import run_rl
from llm_jax.posttrain.samples import write_chat_samples
from llm_jax.tokenizer import load_tokenizer

STAGES = ("rl", "eval", "samples", "report")


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  tokenizer = load_tokenizer(require_stage(workdir, config.init.stage, hint="configs/nano.py"))
  config = config_lib.resolve(config, tokenizer)
  stage = config.rl.stage
  if "rl" in todo:  # the SFT loop settings ride along into the stage's config.json (eval's loss seq_len)
    run_rl(stage_config(config, "sft"), workdir, tokenizer, init_stage=config.init.stage, stage=stage)
  if "eval" in todo:
    evaluate_stages(config, workdir, (config.init.stage, stage))
  if "samples" in todo and not os.path.exists(os.path.join(workdir, "samples", f"{stage}.txt")):
    for question, reply in write_chat_samples(workdir, stage, config.chat_sample, seed=config.seed):
      print(f"--- user: {question}\n{reply}", flush=True)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
