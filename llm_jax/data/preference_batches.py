"""Rankings -> fixed-shape arrays for reward-model and DPO steps, and their seeded batches.

Each reply is rendered with its prompt as one conversation (`tokenizer.chat.render`, so the last token
is the assistant's end token and the loss mask marks the reply). A ranking becomes K rows, best first;
rankings with fewer replies than the widest one are padded with invalid rows. Replies that do not
fit `seq_len` or are empty are dropped; a ranking left with fewer than two replies is skipped. Both
are counted in `stats["skipped"]`.
"""

import collections
import dataclasses
from collections.abc import Sequence

import numpy as np

from llm_jax.data.preferences import Ranking
from llm_jax.tokenizer.base import Tokenizer
from llm_jax.tokenizer.chat import InvalidConversation, render

KEYS = ("tokens", "loss_mask", "lengths", "valid")


@dataclasses.dataclass
class PreferenceArrays:
  """tokens int32[N, K, T], loss_mask float32[N, K, T] (1 on reply tokens), lengths int32[N, K],
  valid bool[N, K], gold float32[N, K] (the labeller's noiseless scores; NaN where the data has none);
  row k of a ranking is better than rows k+1, k+2, ..."""
  tokens: np.ndarray
  loss_mask: np.ndarray
  lengths: np.ndarray
  valid: np.ndarray
  stats: dict
  gold: np.ndarray | None = None

  def __len__(self) -> int:
    return len(self.tokens)

  def take(self, indices) -> dict[str, np.ndarray]:
    return {k: getattr(self, k)[indices] for k in KEYS}


def encode(rankings: Sequence[Ranking], tokenizer: Tokenizer, seq_len: int, *,
           template: str = "llm_jax") -> PreferenceArrays:
  """Render every reply of every ranking (see the module docstring)."""
  skipped, kept = collections.Counter(), []
  for ranking in rankings:
    rows = []
    for k, reply in enumerate(ranking.completions):
      try:
        ids, mask = render(list(ranking.prompt) + [{"role": "assistant", "content": reply}], tokenizer,
                           template=template, max_len=seq_len)
        rows.append((ids, mask, ranking.scores[k] if ranking.scores else np.nan))
      except InvalidConversation as e:
        skipped[f"reply_{e.reason}"] += 1
    if len(rows) < 2:
      skipped["ranking_under_two_replies"] += 1
      continue
    kept.append(rows)
  if not kept:
    raise ValueError(f"no ranking has two replies that fit seq_len={seq_len} (skipped: {dict(skipped)})")
  N, K = len(kept), max(len(rows) for rows in kept)
  out = PreferenceArrays(np.zeros((N, K, seq_len), np.int32), np.zeros((N, K, seq_len), np.float32),
                         np.zeros((N, K), np.int32), np.zeros((N, K), bool), {}, np.full((N, K), np.nan, np.float32))
  for n, rows in enumerate(kept):
    for k, (ids, mask, gold) in enumerate(rows):
      out.gold[n, k] = gold
      out.tokens[n, k, :len(ids)] = ids
      out.loss_mask[n, k, :len(ids)] = mask
      out.lengths[n, k] = len(ids)
      out.valid[n, k] = True
  out.stats = {"rankings": N, "replies": int(out.valid.sum()), "max_replies": K,
               "mean_length": float(out.lengths[out.valid].mean()), "skipped": dict(skipped)}
  return out


def batch_indices(n: int, step: int, batch_size: int, seed: int) -> np.ndarray:
  """Rows of batch `step` of a seeded shuffle of n rows, epoch after epoch (a short last batch of each
  epoch is dropped), so a resumed run sees the same batches."""
  per_epoch = n // batch_size
  if per_epoch == 0:
    raise ValueError(f"{n} rankings are fewer than one batch of {batch_size}; lower the batch size")
  epoch, b = divmod(step, per_epoch)
  return np.random.default_rng([seed, epoch]).permutation(n)[b * batch_size:(b + 1) * batch_size]


def train_batch(arrays: PreferenceArrays, step: int, batch_size: int, seed: int) -> dict[str, np.ndarray]:
  """Batch `step` (see batch_indices); "index" holds its rows' positions in `arrays`."""
  index = batch_indices(len(arrays), step, batch_size, seed)
  return dict(arrays.take(index), index=index)


def eval_batches(arrays: PreferenceArrays, batch_size: int, max_batches: int = 0):
  """All rankings in order, the last batch padded with invalid rows (they count in no metric)."""
  n = len(arrays) if not max_batches else min(len(arrays), max_batches * batch_size)
  for start in range(0, n, batch_size):
    idx = np.arange(start, start + batch_size)
    index = np.minimum(idx, len(arrays) - 1)
    batch = dict(arrays.take(index), index=index)
    batch["valid"] = batch["valid"] & (idx < n)[:, None]
    yield batch
