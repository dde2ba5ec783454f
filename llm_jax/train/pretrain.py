"""The pretraining stage: token shards in, a base-model checkpoint (workdir/checkpoints/base) out."""

import jax

from llm_jax.data import pipeline
from llm_jax.train import loop

STAGE = "base"


def pretrain(cfg, workdir: str, train_dir: str, val_dir: str | None, tokenizer) -> dict:
  """Train the model in `cfg` on the shards in `train_dir` (resuming or skipping as needed)."""
  tc = cfg.train
  common = dict(seq_len=tc.seq_len, seed=cfg.seed, packing=cfg.data.packing,
                process_index=jax.process_index(), process_count=jax.process_count())

  def make_train_iter(local_batch: int):
    return pipeline.make_iterator(train_dir, batch_size=local_batch, **common)

  def make_val_iter(local_batch: int):
    return pipeline.make_iterator(val_dir, batch_size=local_batch, shuffle=False, num_epochs=1, **common)

  return loop.train(cfg, workdir, STAGE, make_train_iter, make_val_iter if val_dir else None,
                    tokenizer.token_byte_lengths())
