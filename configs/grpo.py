"""GRPO on the nano assistant (experiments/grpo.py): checkpoints/<init.stage> -> rl -> eval -> samples -> report.

Run configs/nano.py (or configs/sft.py) first, then, in the same workdir:
  python -m llm_jax.main --config=configs/grpo.py --workdir=runs/nano
Variants are overrides, e.g. --config.rl.task=countdown (after SFT on it), --config.rl.algorithm=rejection,
--config.rl.loss_agg=sequence --config.rl.advantage_scale=none, --config.rl.stage=rl_b (a second run
beside the first). Preset: tiny (on a configs/nano.py:tiny_full or configs/sft.py:tiny workdir).
"""

import importlib.util
import os

import ml_collections


def nano_config(preset: str = ""):
  """configs/nano.py's config (model and data must match the trained stages')."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nano.py")
  spec = importlib.util.spec_from_file_location("llm_jax_nano_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def get_config(preset: str = ""):
  if preset not in ("", "tiny"):
    raise ValueError(f"unknown grpo preset {preset!r}; use tiny or nothing")
  c = nano_config("tiny_full" if preset else "")  # nano's rl, eval and chat_sample settings
  c.experiment = "experiments/grpo.py"
  c.stages = ""
  c.init = ml_collections.ConfigDict()
  c.init.stage = "sft"  # stage whose weights RL starts from (checkpoints/<stage>)
  return c
