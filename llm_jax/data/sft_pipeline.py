"""Fine-tuning batches: conversations -> render -> packed rows with segment ids -> grain iterator.

Each conversation is rendered once (`tokenizer.chat.render`, truncated to seq_len + 1 tokens by its
rule) and becomes seq_len-or-fewer (input, target) pairs: tokens = ids[:-1], targets = ids[1:],
loss_mask = mask[1:]. Conversations are placed whole into rows of seq_len (best fit among the last
few open rows, in a seeded random order); within a row they get segment ids 1, 2, ... and positions
restarting at 0, so they never attend to each other; the rest of a row is padding (segment 0, mask 0).

Batches are the training loop's dicts of [batch_size, seq_len] arrays; the iterator is grain's
(shuffled by seed each epoch, host-sharded, `get_state`/`set_state` resume exactly). A finite
iterator (num_epochs set) pads its last batch with empty rows, which add nothing to loss sums.
"""

import collections
import dataclasses
from collections.abc import Iterable

import grain
import numpy as np

from llm_jax.tokenizer.base import Tokenizer
from llm_jax.tokenizer.chat import InvalidConversation, render

KEYS = ("tokens", "targets", "loss_mask", "segment_ids", "positions")


@dataclasses.dataclass
class PackedRows:
  """Packed conversations: int32[R, L] tokens/targets/segment_ids/positions, float32 loss_mask."""
  tokens: np.ndarray
  targets: np.ndarray
  loss_mask: np.ndarray
  segment_ids: np.ndarray
  positions: np.ndarray
  stats: dict

  def __len__(self) -> int:
    return len(self.tokens)

  def arrays(self) -> dict[str, np.ndarray]:
    return {k: getattr(self, k) for k in KEYS}


def _plan(lengths: list[int], seq_len: int, open_rows: int) -> list[list[int]]:
  """Indices per row: each item goes to the fullest open row it fits in, else a new row."""
  rows, space, candidates = [], [], []
  for i, n in enumerate(lengths):
    fits = [r for r in candidates if space[r] >= n]
    if fits:
      r = min(fits, key=lambda r: space[r])
    else:
      rows.append([])
      space.append(seq_len)
      r = len(rows) - 1
      candidates = (candidates + [r])[-open_rows:]
    rows[r].append(i)
    space[r] -= n
  return rows


def pack(conversations: Iterable, tokenizer: Tokenizer, seq_len: int, *, template: str = "llm_jax",
         seed: int = 0, open_rows: int = 16) -> PackedRows:
  """Render and pack `conversations` (see the module docstring); invalid ones are skipped and counted in
  stats['skipped'] by reason."""
  skipped, rendered = collections.Counter(), []
  for conv in conversations:
    try:
      rendered.append(render(conv, tokenizer, template=template, max_len=seq_len + 1))
    except InvalidConversation as e:
      skipped[e.reason] += 1
  if not rendered:
    raise ValueError(f"no conversation could be rendered (skipped: {dict(skipped)})")
  order = np.random.default_rng(seed).permutation(len(rendered))
  rows = _plan([len(rendered[i][0]) - 1 for i in order], seq_len, open_rows)
  R = len(rows)
  out = {k: np.zeros((R, seq_len), np.float32 if k == "loss_mask" else np.int32) for k in KEYS}
  for r, members in enumerate(rows):
    t = 0
    for seg, j in enumerate(members, start=1):
      ids, mask = rendered[order[j]]
      n = len(ids) - 1
      out["tokens"][r, t:t + n] = ids[:-1]
      out["targets"][r, t:t + n] = ids[1:]
      out["loss_mask"][r, t:t + n] = mask[1:]
      out["segment_ids"][r, t:t + n] = seg
      out["positions"][r, t:t + n] = np.arange(n)
      t += n
  used = int((out["segment_ids"] > 0).sum())
  stats = {"conversations": len(rendered), "rows": R, "tokens": used, "fill": used / (R * seq_len),
           "loss_tokens": int(out["loss_mask"].sum()), "skipped": dict(skipped)}
  return PackedRows(**out, stats=stats)


class _ReadRows:
  """grain map: a batch of row indices -> the batch dict, padded with empty rows to batch_size."""

  def __init__(self, rows: PackedRows, batch_size: int):
    self.arrays, self.batch_size = rows.arrays(), batch_size

  def __call__(self, rows_B: np.ndarray) -> dict[str, np.ndarray]:
    pad = self.batch_size - len(rows_B)
    return {k: np.pad(v[rows_B], ((0, pad), (0, 0))) if pad else v[rows_B] for k, v in self.arrays.items()}


def make_dataset(rows: PackedRows, *, batch_size: int, seed: int, shuffle: bool = True,
                 num_epochs: int | None = None, process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """Batched grain.MapDataset of this host's rows (an equal-length prefix split i mod process_count)."""
  per_host = len(rows) // process_count
  if per_host == 0:
    raise ValueError(f"{len(rows)} packed rows are too few for {process_count} hosts; add conversations")
  ds = grain.MapDataset.range(per_host * process_count)[process_index::process_count]
  if shuffle:
    ds = ds.shuffle(seed=seed)
  ds = ds.repeat(num_epochs).batch(batch_size, drop_remainder=num_epochs is None)
  return ds.map(_ReadRows(rows, batch_size))


def make_iterator(rows: PackedRows, *, batch_size: int, seed: int, shuffle: bool = True,
                  num_epochs: int | None = None, process_index: int = 0, process_count: int = 1,
                  num_threads: int = 1, prefetch: int = 4) -> grain.DatasetIterator:
  """Checkpointable iterator of batches (see the module docstring); `num_epochs=None` repeats forever."""
  ds = make_dataset(rows, batch_size=batch_size, seed=seed, shuffle=shuffle, num_epochs=num_epochs,
                    process_index=process_index, process_count=process_count)
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)))
