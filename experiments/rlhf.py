"""RLHF: preference data -> reward model -> PPO or GRPO against it -> gold evaluation -> samples -> report.

configs/rlhf.py; needs the SFT stage in the workdir. Stages whose artifact exists are skipped.
"""

from llm_jax import stages as stages_lib
from llm_jax.eval.report import write_report
from llm_jax.posttrain.preference_data import make_preferences, require_sft
from llm_jax.posttrain.preference_eval import gold_eval
from llm_jax.posttrain.reward_model import train_reward_model
from llm_jax.posttrain.rlhf import run_rlhf
from llm_jax.posttrain.samples import write_chat_samples
from llm_jax.tokenizer.chat import detect_template

STAGES = ("preferences", "reward_model", "rlhf", "gold_eval", "samples", "report")


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  config, tokenizer = require_sft(config, workdir, config.rlhf.init_stage)
  stage = config.rlhf.stage
  if "preferences" in todo or "reward_model" in todo:
    train, test = make_preferences(config, workdir)
    if "reward_model" in todo:
      train_reward_model(config, workdir, tokenizer, train, test, template=detect_template(tokenizer))
  if "rlhf" in todo:
    run_rlhf(config, workdir, tokenizer, gold_cfg=config.gold)
  if "gold_eval" in todo:
    for name in (config.rlhf.init_stage, stage):
      gold_eval(config, workdir, name, tokenizer, config.rlhf.reward_stage, config.reward_model.seq_len)
  if "samples" in todo:
    for question, reply in write_chat_samples(workdir, stage, config.sample, seed=config.seed):
      print(f"--- user: {question}\n{reply}", flush=True)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
