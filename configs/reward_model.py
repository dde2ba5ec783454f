"""Reward model on nano (experiments/reward_model.py): the SFT model's own samples, ranked by the gold
function with Bradley-Terry noise, train a reward model initialised from the SFT model.

Run configs/nano.py and configs/sft.py first, then, in the same workdir:
  python -m llm_jax.main --config=configs/reward_model.py --workdir=runs/nano
Other preference data: --config.preferences.source=jsonl:<glob> | hf:hh | hf:ultrafeedback(_binarized).
Presets: tiny (seconds, after configs/sft.py:tiny).
"""

import importlib.util
import os

from llm_jax.posttrain import gold, preference_data, reward_model


def sibling_config(name: str, preset: str = ""):
  """get_config(preset) of another file in configs/."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"llm_jax_{name}_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def get_config(preset: str = ""):
  if preset not in ("", "tiny"):
    raise ValueError(f"unknown reward_model preset {preset!r}; use tiny or nothing")
  tiny = preset == "tiny"
  c = sibling_config("sft", preset)  # model, tasks, mesh, checkpoint: those of the SFT stage
  c.experiment = "experiments/reward_model.py"
  c.preferences = preference_data.default_config()
  c.gold = gold.default_config()
  c.reward_model = reward_model.default_config()
  # the seeds' scale (1,000 prompts, a few replies each): 256 prompts left the reward model at chance
  c.preferences.update(dict(prompts=1024, test_prompts=128))
  c.reward_model.train.steps = 400
  if tiny:
    c.preferences.update(dict(prompts=32, test_prompts=16, replies=3, max_new_tokens=40, batch_size=16))
    c.gold.update(dict(min_words=4, max_words=20))
    c.reward_model.seq_len = 128
    c.reward_model.train.update(dict(steps=20, batch_size=4, log_every=5, eval_every=10, lr=1e-3))
  return c
