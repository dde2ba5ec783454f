"""RLHF on nano (experiments/rlhf.py): gold-labelled preferences -> reward model -> PPO (or GRPO) against it.

Run configs/nano.py and configs/sft.py first, then, in the same workdir:
  python -m llm_jax.main --config=configs/rlhf.py --workdir=runs/nano
The reward-model stages are skipped when configs/reward_model.py already ran there. Presets (comma-
separated): tiny (seconds, after configs/sft.py:tiny), grpo (the RL stage's GRPO with the reward model's
score as its reward, instead of PPO), stop (stop early on a KL budget or when the gold check diverges).
"""

import importlib.util
import os

from llm_jax.posttrain import rl, rlhf


def _reward_model_config(preset: str):
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reward_model.py")
  spec = importlib.util.spec_from_file_location("llm_jax_reward_model_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def get_config(preset: str = ""):
  flags = {p.strip() for p in preset.split(",") if p.strip()}
  unknown = flags - {"tiny", "grpo", "stop"}
  if unknown:
    raise ValueError(f"unknown rlhf preset(s) {sorted(unknown)}; use tiny, grpo and/or stop")
  tiny = "tiny" in flags
  c = _reward_model_config("tiny" if tiny else "")
  c.experiment = "experiments/rlhf.py"
  c.rlhf = rlhf.default_config()
  c.rlhf.algorithm = "grpo" if "grpo" in flags else "ppo"
  # GRPO (rlhf.algorithm=grpo): the RL stage's settings; its task reward is the reward model's score
  c.rl = rl.default_config()
  c.rl.update(dict(reward="correct@1", steps=60, prompts_per_step=8, group_size=4, max_prompt_len=96,
                   max_new_tokens=96, kl_coef=0.05, eval_examples=0, samples_every=20, checkpoint_every=20,
                   drop_zero_variance=False, truncation="penalty"))
  c.rl.optim.lr = 2e-5
  if "stop" in flags:
    c.rlhf.stop.update(dict(kl_budget=20.0, check="gold", patience=2))
  if tiny:
    c.rlhf.update(dict(max_prompt_len=72, max_new_tokens=40, prompts_per_step=8, eval_prompts=8))
    c.rlhf.train.update(dict(steps=4, eval_every=2, lr=1e-4))
    c.rl.update(dict(steps=3, prompts_per_step=4, group_size=2, max_prompt_len=72, max_new_tokens=40))
  return c
