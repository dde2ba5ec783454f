"""DPO: preference data -> DPO (or IPO) from the SFT model -> eval -> gold evaluation -> samples -> report.

configs/dpo.py; needs the SFT stage in the workdir. Stages whose artifact exists are skipped.
"""

from llm_jax import stages as stages_lib
from llm_jax.eval.report import write_report
from llm_jax.eval.run import run_eval
from llm_jax.posttrain.dpo import train_dpo
from llm_jax.posttrain.preference_data import make_preferences, require_sft
from llm_jax.posttrain.preference_eval import gold_eval
from llm_jax.posttrain.samples import write_chat_samples
from llm_jax.tokenizer.chat import detect_template

STAGES = ("preferences", "dpo", "eval", "gold_eval", "samples", "report")


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  config, tokenizer = require_sft(config, workdir, config.dpo.init_stage)
  stage = config.dpo.stage
  if "preferences" in todo or "dpo" in todo:
    train, test = make_preferences(config, workdir)
    if "dpo" in todo:
      train_dpo(config, workdir, tokenizer, train, test, template=detect_template(tokenizer))
  if "eval" in todo:
    run_eval(config, workdir, stage=stage)
  if "gold_eval" in todo:
    for name in (config.dpo.init_stage, stage):
      gold_eval(config, workdir, name, tokenizer)
  if "samples" in todo:
    for question, reply in write_chat_samples(workdir, stage, config.sample, seed=config.seed):
      print(f"--- user: {question}\n{reply}", flush=True)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
