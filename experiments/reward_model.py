"""Preference data -> reward model -> report (configs/reward_model.py). Needs the SFT stage in the workdir."""

from llm_jax import stages as stages_lib
from llm_jax.eval.report import write_report
from llm_jax.posttrain.preference_data import make_preferences, require_sft
from llm_jax.posttrain.reward_model import train_reward_model
from llm_jax.tokenizer.chat import detect_template

STAGES = ("preferences", "reward_model", "report")


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  config, tokenizer = require_sft(config, workdir, config.reward_model.init_stage)
  if "preferences" in todo or "reward_model" in todo:
    train, test = make_preferences(config, workdir)  # gold labels are written once and reused
    if "reward_model" in todo:
      train_reward_model(config, workdir, tokenizer, train, test, template=detect_template(tokenizer))
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
