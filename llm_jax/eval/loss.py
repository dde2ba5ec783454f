"""Held-out loss of a model: cross-entropy per target token, bits per byte, perplexity.

On token shards every token is a target; on conversations only assistant tokens are (the render's
loss mask), so the numbers measure how well the model predicts the replies. Bits per byte divides
the summed loss (in bits) by the UTF-8 bytes of the target tokens; special tokens count 0 bytes.
"""

from collections.abc import Iterable

import jax
import numpy as np

from llm_jax.data import pipeline, sft_pipeline
from llm_jax.train.step import make_eval_step


def summarize(sums: np.ndarray) -> dict:
  """(loss sum, target tokens, target bytes) -> {loss, bpb, ppl, tokens}."""
  loss = sums[0] / max(sums[1], 1)
  return {"loss": float(loss), "bpb": float(sums[0] / np.log(2) / max(sums[2], 1)),
          "ppl": float(np.exp(loss)), "tokens": int(sums[1])}


def batches_loss(graphdef, params, batches: Iterable[dict], token_bytes: np.ndarray,
                 max_batches: int = 0, eval_fn=None) -> dict:
  """Loss over batches of the loop's dict format (tokens, targets, positions, segment_ids, loss_mask)."""
  eval_fn = eval_fn or jax.jit(make_eval_step(graphdef))
  token_bytes = np.asarray(token_bytes, np.float32)
  sums = np.zeros(3)
  for i, batch in enumerate(batches):
    if max_batches and i >= max_batches:
      break
    arrays = {k: np.asarray(batch[k]) for k in sft_pipeline.KEYS}
    arrays["target_bytes"] = token_bytes[arrays["targets"]]
    sums += np.array(jax.device_get(eval_fn(params, arrays)), np.float64)
  if sums[1] == 0:
    raise ValueError("no target tokens were evaluated: the data is empty or shorter than one row")
  return summarize(sums)


def shards_loss(graphdef, params, shards_dir: str, tokenizer, *, seq_len: int, batch_size: int,
                max_batches: int = 0) -> dict:
  """Loss on token shards (contiguous windows, one pass, in order); the batch shrinks to the number of
  windows when there are fewer."""
  common = dict(seq_len=seq_len, seed=0, shuffle=False, num_epochs=1)
  rows = len(pipeline.make_dataset(shards_dir, batch_size=1, **common))
  batches = pipeline.make_iterator(shards_dir, batch_size=min(batch_size, rows), **common)
  return batches_loss(graphdef, params, batches, tokenizer.token_byte_lengths(), max_batches)


def conversations_loss(graphdef, params, conversations, tokenizer, *, seq_len: int, batch_size: int,
                       template: str = "llm_jax", max_batches: int = 0) -> dict:
  """Loss on the assistant tokens of conversations (packed like SFT batches, one pass)."""
  rows = sft_pipeline.pack(conversations, tokenizer, seq_len, template=template)
  batches = sft_pipeline.make_iterator(rows, batch_size=batch_size, seed=0, shuffle=False, num_epochs=1)
  return batches_loss(graphdef, params, batches, tokenizer.token_byte_lengths(), max_batches)
