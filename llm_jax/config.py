"""The full run config: every section comes from the module that reads it, where each key is documented.

configs/*.py start from `base_config()` and override fields; the command line overrides further
(`--config.train.lr=3e-4`). `stages` and `experiment` choose what runs.
"""

import ml_collections

from llm_jax import parallel
from llm_jax.model import config as model_config
from llm_jax.train import checkpoint, loop


def sample_config() -> ml_collections.ConfigDict:
  """Samples written after a stage (workdir/samples/<stage>.txt) and defaults of `python -m llm_jax.sample`."""
  c = ml_collections.ConfigDict()
  c.prompts = ("The meaning of", "In this tutorial, we", "def main(")
  c.max_new_tokens = 64
  c.temperature = 0.8
  c.top_k = 0
  c.top_p = 0.95
  return c


def base_config() -> ml_collections.ConfigDict:
  from llm_jax.data import prepare
  from llm_jax.tokenizer import train as tokenizer_train
  c = ml_collections.ConfigDict()
  c.seed = 0  # one seed for init, data order and sampling: same seed, same machine -> same numbers
  c.experiment = "experiments/pretrain.py"  # file exposing run(config, workdir); relative to cwd or the repo
  c.stages = ""  # comma-separated subset of the experiment's stages to run; "" runs all
  c.model = model_config.default_config()
  c.tokenizer = tokenizer_train.default_config()
  c.data = prepare.default_config()
  c.data.packing = "window"  # "window": contiguous windows; "docs": document-aligned with segment ids
  c.train = loop.default_config()
  c.checkpoint = checkpoint.default_config()
  c.mesh = parallel.default_config()
  c.sample = sample_config()
  return c


def resolve(cfg, tokenizer) -> ml_collections.ConfigDict:
  """Fill fields that depend on artifacts: model.vocab_size=0 takes the tokenizer's, padded to 64."""
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  if cfg.model.vocab_size == 0:
    cfg.model.vocab_size = -(-tokenizer.vocab_size // 64) * 64
  if cfg.model.vocab_size < tokenizer.vocab_size:
    raise ValueError(f"model.vocab_size={cfg.model.vocab_size} is smaller than the tokenizer's "
                     f"{tokenizer.vocab_size} ids; raise it or set it to 0 (take the tokenizer's)")
  if cfg.train.seq_len > cfg.model.max_seq_len:
    raise ValueError(f"train.seq_len={cfg.train.seq_len} exceeds model.max_seq_len={cfg.model.max_seq_len}")
  return cfg
