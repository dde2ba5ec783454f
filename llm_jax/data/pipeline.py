"""Training batches: token shards -> grain (shuffle, repeat, mix, host shard, batch) -> numpy dicts.

Every batch is a dict of [batch_size, seq_len] arrays: `tokens` int32, `targets` int32 (the next
token), `loss_mask` float32, `segment_ids` int32, `positions` int32.

Packing (how a source's token stream becomes rows of seq_len + 1 tokens; tokens = row[:-1],
targets = row[1:]):
  "window": row r is stream[r*L : r*L + L + 1]; inputs never overlap and every token is a target
            once per epoch. segment_ids 1, positions 0..L-1, loss_mask 1 (BOS marks documents).
  "docs":   documents are cut into chunks of at most L + 1 tokens, and consecutive chunks are packed
            greedily into rows (next fit, fixed plan, so a row is a contiguous span of the stream),
            padded with 0. segment_ids 1, 2, 3, ... per document in a row (0 on padding), positions
            restart at 0 at every document (and at a row's start), loss_mask 0 on padding and where
            the target belongs to another document than the input token.

Rows are shuffled (grain's index shuffle, reseeded every epoch), each host takes the rows
i = process_index (mod process_count) of an equal-length prefix, and a list of (source, weight)
is mixed deterministically in those proportions (stopping when the first finite source runs out).
`batch_size` is per host. The iterator is grain's: `get_state()` is a small JSON-able dict and
`set_state` on a freshly made iterator (same arguments) resumes with exactly the same batches.
"""

import os
from collections.abc import Sequence

import grain
import numpy as np

from llm_jax.data.shards import TokenShards

Source = str | os.PathLike | TokenShards


def _pack_docs(doc_starts: np.ndarray, num_tokens: int, row_len: int) -> tuple[np.ndarray, np.ndarray]:
  """Next-fit packing plan: (row_starts, row_lengths) covering [0, num_tokens) contiguously."""
  starts = np.asarray(doc_starts, np.int64)
  if starts.size == 0 or starts[0] != 0:
    starts = np.concatenate([[0], starts])
  lengths = np.diff(np.append(starts, num_tokens))
  cuts = (lengths - 1) // row_len  # extra chunk boundaries inside each document
  first = np.repeat(np.cumsum(cuts) - cuts, cuts)
  k = np.arange(cuts.sum()) - first + 1
  inner = np.repeat(starts, cuts) + k * row_len
  bounds = np.unique(np.concatenate([starts, inner, [num_tokens]]))
  # From boundary i, a row reaches the furthest boundary within row_len tokens.
  reach = (np.searchsorted(bounds, bounds + row_len, side="right") - 1).tolist()
  rows, i, last = [], 0, len(bounds) - 1
  while i < last:
    rows.append(i)
    i = reach[i]
  row_starts = bounds[rows]
  return row_starts, bounds[np.array(reach)[rows]] - row_starts


class _Rows:
  """The rows of one source (see the module docstring) and a vectorised batch reader."""

  def __init__(self, shards: TokenShards, seq_len: int, packing: str):
    self.shards, self.seq_len, self.packing = shards, seq_len, packing
    if packing == "window":
      self.num_rows = max(shards.num_tokens - 1, 0) // seq_len
    elif packing == "docs":
      self.starts, self.lengths = _pack_docs(shards.doc_starts, shards.num_tokens, seq_len + 1)
      self.num_rows = len(self.starts)
    else:
      raise ValueError(f"packing={packing!r} is unknown; use 'window' or 'docs'")

  def read(self, rows_B: np.ndarray) -> dict[str, np.ndarray]:
    L = self.seq_len
    B = len(rows_B)
    if self.packing == "window":
      row_BxR = np.stack([self.shards.read(r * L, L + 1) for r in rows_B]).astype(np.int32)
      ones_BxL = np.ones((B, L), np.int32)
      positions_BxL = np.tile(np.arange(L, dtype=np.int32), (B, 1))
      return {"tokens": row_BxR[:, :-1], "targets": row_BxR[:, 1:], "loss_mask": ones_BxL.astype(np.float32),
              "segment_ids": ones_BxL, "positions": positions_BxL}
    starts_B, lengths_B = self.starts[rows_B], self.lengths[rows_B]
    row_BxR = np.zeros((B, L + 1), np.int32)
    for b in range(B):
      row_BxR[b, :lengths_B[b]] = self.shards.read(starts_B[b], lengths_B[b])
    abs_BxR = starts_B[:, None] + np.arange(L + 1)
    valid_BxR = np.arange(L + 1) < lengths_B[:, None]
    doc_starts = self.shards.doc_starts
    doc_BxR = np.searchsorted(doc_starts, abs_BxR, side="right") - 1
    seg_BxR = np.where(valid_BxR, doc_BxR - doc_BxR[:, :1] + 1, 0).astype(np.int32)
    begin_BxR = np.maximum(doc_starts[np.maximum(doc_BxR, 0)], starts_B[:, None])
    pos_BxR = np.where(valid_BxR, abs_BxR - begin_BxR, 0).astype(np.int32)
    mask_BxL = (seg_BxR[:, 1:] == seg_BxR[:, :-1]) & (seg_BxR[:, 1:] > 0)
    return {"tokens": row_BxR[:, :-1], "targets": row_BxR[:, 1:], "loss_mask": mask_BxL.astype(np.float32),
            "segment_ids": seg_BxR[:, :-1], "positions": pos_BxR[:, :-1]}


class _ReadBatch:
  """grain map: a batch of (source index, row index) pairs -> the batch dict."""

  def __init__(self, rows: list[_Rows]):
    self.rows = rows

  def __call__(self, batch):
    src_B, row_B = batch
    if len(self.rows) == 1:
      return self.rows[0].read(row_B)
    parts, order = [], []
    for s in np.unique(src_B):
      sel = np.flatnonzero(src_B == s)
      parts.append(self.rows[s].read(row_B[sel]))
      order.append(sel)
    inverse = np.argsort(np.concatenate(order), kind="stable")
    return {k: np.concatenate([p[k] for p in parts])[inverse] for k in parts[0]}


def _source_seed(seed: int, i: int) -> int:
  return int(np.random.SeedSequence([seed, i]).generate_state(1)[0])


def make_dataset(sources: Source | Sequence[tuple[Source, float]], *, batch_size: int, seq_len: int,
                 seed: int, packing: str = "window", shuffle: bool = True, num_epochs: int | None = None,
                 process_index: int = 0, process_count: int = 1) -> grain.MapDataset:
  """The batched grain.MapDataset behind `make_iterator` (same arguments); `len` is its batch count."""
  if isinstance(sources, (str, os.PathLike, TokenShards)):
    sources = [(sources, 1.0)]
  if not sources or not all(isinstance(s, (tuple, list)) and len(s) == 2 and s[1] > 0 for s in sources):
    raise ValueError("sources must be a shard dir or a non-empty list of (shard_dir, weight > 0); "
                     f"got {sources!r}")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} must be in [0, process_count={process_count})")
  datasets = []
  rows = []
  for i, (src, _) in enumerate(sources):
    shards = src if isinstance(src, TokenShards) else TokenShards(os.fspath(src))
    r = _Rows(shards, seq_len, packing)
    per_host = r.num_rows // process_count
    if per_host == 0:
      raise ValueError(f"{shards.directory!r} has {shards.num_tokens} tokens: too few for one row of "
                       f"seq_len={seq_len} per host ({process_count} hosts); lower seq_len or add data")
    ds = grain.MapDataset.range(per_host * process_count)[process_index::process_count]
    if shuffle:
      ds = ds.shuffle(seed=_source_seed(seed, i))
    ds = ds.repeat(num_epochs).map(lambda row, i=i: (i, row))
    datasets.append(ds)
    rows.append(r)
  ds = datasets[0] if len(datasets) == 1 else grain.MapDataset.mix(datasets, [w for _, w in sources])
  return ds.batch(batch_size, drop_remainder=True).map(_ReadBatch(rows))


def make_iterator(sources: Source | Sequence[tuple[Source, float]], *, batch_size: int, seq_len: int,
                  seed: int, packing: str = "window", shuffle: bool = True, num_epochs: int | None = None,
                  process_index: int = 0, process_count: int = 1, num_threads: int = 2,
                  prefetch: int = 8) -> grain.DatasetIterator:
  """Checkpointable iterator of batches (see the module docstring); `num_epochs=None` repeats forever.
  `num_threads`/`prefetch`: grain reader threads and batches read ahead."""
  ds = make_dataset(sources, batch_size=batch_size, seq_len=seq_len, seed=seed, packing=packing,
                    shuffle=shuffle, num_epochs=num_epochs, process_index=process_index,
                    process_count=process_count)
  options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
  return iter(ds.to_iter_dataset(options))
