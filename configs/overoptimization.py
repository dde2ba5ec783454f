"""Reward hacking on nano (experiments/overoptimization.py, after Gao, Schulman and Hilton, 2022): a proxy
reward model trained on few gold labels, then optimised against with best-of-n (n = 1 .. samples) and with
PPO without a KL penalty; gold and proxy scores against sqrt(KL from the SFT model), with the functional
forms fitted to the gold scores (plots/overoptimization_*.png, report.md).

Run configs/nano.py and configs/sft.py first, then, in the same workdir:
  python -m llm_jax.main --config=configs/overoptimization.py --workdir=runs/nano
Presets: tiny (seconds, after configs/sft.py:tiny; too small to show the effect, only that it runs).
"""

import importlib.util
import os

from llm_jax.posttrain import best_of_n, rlhf


def _reward_model_config(preset: str):
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reward_model.py")
  spec = importlib.util.spec_from_file_location("llm_jax_reward_model_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def get_config(preset: str = ""):
  if preset not in ("", "tiny"):
    raise ValueError(f"unknown overoptimization preset {preset!r}; use tiny or nothing")
  tiny = preset == "tiny"
  c = _reward_model_config(preset)
  c.experiment = "experiments/overoptimization.py"
  # few noisy labels: a proxy that is right on the SFT model's samples and wrong far from them
  c.preferences.update(dict(dir="data/overoptimization/labels", prompts=96, replies=4))
  c.reward_model.update(dict(stage="proxy_rm"))
  c.reward_model.train.update(dict(steps=150, batch_size=4))
  c.best_of_n = best_of_n.default_config()
  c.rlhf = rlhf.default_config()
  c.rlhf.update(dict(stage="overopt_rl", reward_stage="proxy_rm", eval_prompts=32))
  c.rlhf.kl.update(dict(coef=0.0, adaptive=False, estimator="k3"))  # no penalty; k3: a non-negative KL estimate
  c.rlhf.train.update(dict(steps=60, lr=1e-4, eval_every=5))
  c.rlhf.stop.update(dict(kl_budget=0.0, check=""))  # measure the whole curve (the rule can be tried here too)
  c.show_examples = 4  # replies from the over-optimised end shown in the report
  if tiny:
    c.preferences.update(dict(prompts=24, replies=3))
    c.reward_model.train.steps = 20
    c.best_of_n.update(dict(prompts=4, samples=8, max_new_tokens=40, batch_size=16))
    c.rlhf.update(dict(max_prompt_len=72, max_new_tokens=40, prompts_per_step=8, eval_prompts=8))
    c.rlhf.train.update(dict(steps=4, eval_every=1, lr=1e-4))
  return c
