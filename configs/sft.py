"""Supervised fine-tuning of a nano base model into a small assistant (experiments/sft.py).

Run configs/nano.py first (it makes the tokenizer and checkpoints/base), then, in the same workdir:
  python -m llm_jax.main --config=configs/sft.py --workdir=runs/nano
Presets (comma-separated after ':'): tiny (seconds, on configs/nano.py:tiny), tokens_to_think (the
answer-first vs steps-first arithmetic experiment, experiments/tokens_to_think.py).
"""

import importlib.util
import os

import ml_collections

from llm_jax.eval import run as eval_run


def nano_config(preset: str = ""):
  """configs/nano.py's config (model and data must match the base model's)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nano.py")
  spec = importlib.util.spec_from_file_location("llm_jax_nano_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def get_config(preset: str = ""):
  flags = {p.strip() for p in preset.split(",") if p.strip()}
  unknown = flags - {"tiny", "tokens_to_think"}
  if unknown:
    raise ValueError(f"unknown sft preset(s) {sorted(unknown)}; use tiny and/or tokens_to_think")
  tiny = "tiny" in flags
  c = nano_config("tiny" if tiny else "")
  c.experiment = "experiments/sft.py"
  c.stages = ""  # configs/nano.py:tiny limits its own (speedrun) stages; all of this experiment's run
  c.init = ml_collections.ConfigDict()
  c.init.stage = "base"  # stage whose weights fine-tuning starts from (checkpoints/<stage>)
  c.init.hf = ""  # or a Hugging Face model folder / hub name (GPT-2, Llama): its weights and tokenizer
  # the speedrun's SFT settings (configs/nano.py: mixture, task options, loop), so this experiment and the
  # speedrun make the same assistant; c.sft.stage names the checkpoint, c.sft.template the chat template
  c.sft.template = "auto"  # "auto" (the tokenizer's), llm_jax, chatml or llama3
  c.eval = eval_run.default_config()  # the eval stage after fine-tuning
  c.eval.stage = "sft"
  c.train = ml_collections.ConfigDict(c.sft.train.to_dict())  # experiments/sft.py's fine-tuning loop
  del c.sft.train
  c.checkpoint.every_steps = 100
  c.sample.prompts = ("Who are you?", "Ava has 3 apples. Then she finds 4 more apples. How many apples does Ava "
                      "have now?", "How many 'r' are in strawberry?")
  c.sample.max_new_tokens = 160
  c.sample.temperature = 0.0
  if tiny:
    c.sft.num_conversations, c.sft.val_conversations = 200, 16
    c.train.update(dict(steps=20, batch_size=4, seq_len=128, lr=1e-3, warmup_steps=2, log_every=5, eval_every=10,
                        eval_batches=2))
    c.checkpoint.every_steps = 10
    c.eval.update(dict(num_examples=8, max_new_tokens=64, loss_batches=2))
    c.tasks.arithmetic.update(dict(min_steps=1, max_steps=2))  # short enough for the 128-token context
    c.sample.max_new_tokens = 32
  if "tokens_to_think" in flags:
    c.experiment = "experiments/tokens_to_think.py"
    c.sft.mixture = "arithmetic"
    c.eval.tasks = "arithmetic"
    c.eval.num_examples = 8 if tiny else 200
    if not tiny:  # 2-3 events of every kind on numbers up to 10: several results to carry
      c.tasks.arithmetic.update(dict(min_steps=2, max_steps=3, max_value=10, events="add,sub,packs,double,half"))
      c.sft.num_conversations = 6000
      c.train.update(dict(steps=200, batch_size=16, seq_len=256, lr=2e-3))
  return c
