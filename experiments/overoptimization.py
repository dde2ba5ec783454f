"""Reward-model over-optimisation: gold labels -> proxy reward model -> best-of-n and RL against the proxy
-> gold/proxy vs sqrt(KL) with fitted functional forms -> report (configs/overoptimization.py).

Needs the SFT stage in the workdir; every stage's artifact is reused when it exists.
"""

from llm_jax import stages as stages_lib
from llm_jax.eval.report import write_report
from llm_jax.posttrain.best_of_n import load_best_of_n, run_best_of_n
from llm_jax.posttrain.overopt_analysis import analyse
from llm_jax.posttrain.preference_data import make_preferences, require_sft
from llm_jax.posttrain.reward_model import train_reward_model
from llm_jax.posttrain.rlhf import train_ppo
from llm_jax.tokenizer.chat import detect_template

STAGES = ("preferences", "proxy_rm", "best_of_n", "rl", "analysis", "report")


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  config, tokenizer = require_sft(config, workdir, config.preferences.policy_stage)
  if "preferences" in todo or "proxy_rm" in todo:
    train, test = make_preferences(config, workdir)
    if "proxy_rm" in todo:
      train_reward_model(config, workdir, tokenizer, train, test, template=detect_template(tokenizer))
  bon = load_best_of_n(workdir)
  if "best_of_n" in todo:
    bon = run_best_of_n(config, workdir, tokenizer, config.reward_model.stage, config.reward_model.seq_len)
  if "rl" in todo:
    train_ppo(config, workdir, tokenizer, gold_cfg=config.gold)
  if "analysis" in todo:
    result = analyse(workdir, bon, config.rlhf.stage, config.show_examples)
    for kind, r in result.items():
      print(f"[analysis] {kind}: fit {r['fit']}; best measured gold {r['observed_peak']}", flush=True)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
