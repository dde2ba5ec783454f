"""Post-training sections of a whole-pipeline config (experiments/speedrun.py): tasks, sft, rl, eval.

Pretraining reads the top-level `train`; each later stage carries its own (`sft.train`; `rl.optim` and
the rl loop settings), so one config pretrains, fine-tunes and runs RL with different batch sizes and
learning rates. `stage_config` gives a stage the config shape its functions read (its `train` on top).
"""

import ml_collections

from llm_jax import tasks
from llm_jax.config import sample_config
from llm_jax.eval import run as eval_run
from llm_jax.posttrain import rl
from llm_jax.train import loop


def sft_config() -> ml_collections.ConfigDict:
  """The `sft` section: the conversation mixture and the fine-tuning loop settings."""
  c = ml_collections.ConfigDict()
  c.stage = "sft"  # checkpoint folder the fine-tuned model is written to
  # conversation mixture (llm_jax/data/conversations.py): tasks, files:<glob>, hf:<name>, each @weight
  c.mixture = "identity@0.15,arithmetic@0.5,spelling@0.35"
  c.jsonl = ""  # optional glob of local OpenAI-messages JSONL added to the mixture ...
  c.jsonl_weight = 0.3  # ... with this weight
  c.num_conversations = 6000  # training conversations drawn from the mixture
  c.val_conversations = 150  # held-out conversations for val/loss during training
  c.val_fraction = 0.05  # share of file/HF conversations held out (tasks have their own test split)
  c.template = "llm_jax"  # chat template of the render (ours; chatml/llama3 for imported models)
  c.checkpoint_every = 100
  c.train = loop.default_config()  # fewer steps and a lower peak LR than pretraining, no weight decay
  c.train.update(dict(steps=300, batch_size=8, seq_len=512, lr=1e-3, warmup_steps=20, min_lr_ratio=0.0,
                      weight_decay=0.0, log_every=25, eval_every=100, eval_batches=4))
  return c


def add_posttrain(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`c` with tasks, sft, rl and eval sections (defaults; configs scale them)."""
  c.tasks = tasks.default_config()
  c.sft = sft_config()
  c.rl = rl.default_config()
  c.eval = eval_run.default_config()  # greedy evaluation of the sft and rl models (experiments/speedrun.py)
  c.chat_sample = sample_config()  # questions the chat stages answer into samples/<stage>.txt
  c.chat_sample.update(dict(prompts=("Who are you?", "Ava has 3 apples. Then she finds 4 more apples. How many "
                                     "apples does Ava have now?", "How many 'r' are in strawberry?"),
                            max_new_tokens=160, temperature=0.0))
  return c


def stage_config(config, section: str) -> ml_collections.ConfigDict:
  """A copy of `config` whose `train` and checkpoint interval are those of `config.<section>`."""
  out = ml_collections.ConfigDict(config.to_dict())
  out.train = ml_collections.ConfigDict(config[section].train.to_dict())
  out.checkpoint.every_steps = config[section].checkpoint_every
  if out.train.seq_len > out.model.max_seq_len:
    raise ValueError(f"{section}.train.seq_len={out.train.seq_len} exceeds model.max_seq_len={out.model.max_seq_len}")
  return out
