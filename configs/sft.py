"""Supervised fine-tuning of a nano base model into a small assistant (experiments/sft.py).

Run configs/nano.py first (it makes the tokenizer and checkpoints/base), then, in the same workdir:
  python -m llm_jax.main --config=configs/sft.py --workdir=runs/nano
Presets (comma-separated after ':'): tiny (seconds, on configs/nano.py:tiny), tokens_to_think (the
answer-first vs steps-first arithmetic experiment, experiments/tokens_to_think.py).
"""

import importlib.util
import os

import ml_collections

from llm_jax import tasks
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
  c.sft = ml_collections.ConfigDict()
  c.sft.stage = "sft"  # stage (checkpoint folder) the fine-tuned model is written to
  # conversation mixture (llm_jax/data/conversations.py): tasks, files:<glob>, hf:<name>, each @weight
  c.sft.mixture = "identity@0.15,arithmetic@0.5,spelling@0.35"
  c.sft.jsonl = ""  # optional glob of local OpenAI-messages JSONL added to the mixture ...
  c.sft.jsonl_weight = 0.3  # ... with this weight
  c.sft.num_conversations = 6000  # training conversations drawn from the mixture
  c.sft.val_conversations = 150  # held-out conversations for val/loss during training
  c.sft.val_fraction = 0.05  # share of file/HF conversations held out (tasks have their own test split)
  c.sft.template = "auto"  # chat template: "auto" (the tokenizer's), llm_jax, chatml or llama3
  c.tasks = tasks.default_config()  # synthetic task options (identity facts, arithmetic steps, ...)
  c.eval = eval_run.default_config()  # the eval stage after fine-tuning
  c.eval.stage = "sft"
  # Fine-tuning: fewer steps, lower peak LR than pretraining, no decay of the weights toward 0.
  c.train.update(dict(steps=300, batch_size=8, seq_len=512, lr=1e-3, warmup_steps=20, min_lr_ratio=0.0,
                      weight_decay=0.0, log_every=25, eval_every=100, eval_batches=4))
  c.checkpoint.every_steps = 100
  c.sample.prompts = ("Who are you?", "Ava has 3 apples. Then she finds 4 more apples. How many apples does Ava "
                      "have now?", "How many 'r' are in strawberry?")
  c.sample.max_new_tokens = 160
  c.sample.temperature = 0.0
  if tiny:
    c.sft.num_conversations, c.sft.val_conversations = 200, 16
    c.train.update(dict(steps=20, batch_size=4, seq_len=128, warmup_steps=2, log_every=5, eval_every=10,
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
    if not tiny:  # 2-3 events on numbers up to 10: several results to carry, each within nano's reach
      c.tasks.arithmetic.update(dict(min_steps=2, max_steps=3, max_value=10))
      c.train.update(dict(steps=200, batch_size=16, seq_len=256, lr=2e-3))
  return c
