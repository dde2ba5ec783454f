"""Shared tiny fixtures: a small corpus turned into shards, and a tiny training config."""

import ml_collections
import pytest

from llm_jax import parallel
from llm_jax.model import config as model_config
from llm_jax.train import checkpoint, loop

CORPUS = [
    f"Document {i}: the quick brown fox jumps over the lazy dog {i % 7} times. " * 3 for i in range(200)
]


def tiny_config(**train) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.model = model_config.default_config()
  c.model.update(dict(vocab_size=320, d_model=32, num_layers=2, num_heads=2, num_kv_heads=1, mlp_dim=64,
                      max_seq_len=64, norm="rmsnorm", position="rope", mlp="swiglu", use_bias=False))
  c.data = ml_collections.ConfigDict(dict(packing="window"))
  c.train = loop.default_config()
  c.train.update(dict(steps=8, batch_size=4, seq_len=32, lr=3e-3, warmup_steps=2, log_every=2, eval_every=4,
                      eval_batches=2, tensorboard=False))
  c.train.update(train)
  c.checkpoint = checkpoint.default_config()
  c.checkpoint.update(dict(every_steps=2, keep=5, async_save=True))
  c.mesh = parallel.default_config()
  return c


@pytest.fixture(scope="session")
def byte_shards(tmp_path_factory):
  """(train_dir, val_dir, tokenizer) of byte-level shards of CORPUS."""
  from llm_jax.data.shards import write_shards
  from llm_jax.tokenizer.bytes import ByteTokenizer
  tok = ByteTokenizer()
  root = tmp_path_factory.mktemp("shards")
  write_shards(CORPUS[:180], tok, str(root / "train"), shard_tokens=4096, num_workers=1)
  write_shards(CORPUS[180:], tok, str(root / "val"), shard_tokens=4096, num_workers=1)
  return str(root / "train"), str(root / "val"), tok
