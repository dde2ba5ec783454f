"""DPO on nano (experiments/dpo.py): the SFT model's own samples ranked by the gold function, every pair of
each ranking, direct preference optimisation from the SFT model (no reward model).

Run configs/nano.py and configs/sft.py first, then, in the same workdir:
  python -m llm_jax.main --config=configs/dpo.py --workdir=runs/nano
Presets (comma-separated): tiny (seconds, after configs/sft.py:tiny), ipo (the IPO loss).
The preference data is shared with configs/reward_model.py (workdir/data/preferences).
"""

import importlib.util
import os

from llm_jax.posttrain import dpo


def _reward_model_config(preset: str):
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reward_model.py")
  spec = importlib.util.spec_from_file_location("llm_jax_reward_model_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def get_config(preset: str = ""):
  flags = {p.strip() for p in preset.split(",") if p.strip()}
  unknown = flags - {"tiny", "ipo"}
  if unknown:
    raise ValueError(f"unknown dpo preset(s) {sorted(unknown)}; use tiny and/or ipo")
  tiny = "tiny" in flags
  c = _reward_model_config("tiny" if tiny else "")
  c.experiment = "experiments/dpo.py"
  c.dpo = dpo.default_config()
  if "ipo" in flags:
    c.dpo.update(dict(loss="ipo", stage="ipo"))
  c.eval.update(dict(stage=c.dpo.stage, tasks="chat_loss,arithmetic"))
  if tiny:
    c.dpo.seq_len = 128
    c.dpo.train.update(dict(steps=10, batch_size=4, log_every=5, eval_every=5, lr=1e-4))
  return c
