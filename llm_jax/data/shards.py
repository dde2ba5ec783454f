"""Token shards: documents -> flat binary token files (BOS before every document) + `index.json`.

Layout of a shard directory:
  shard_00000.bin       tokens of whole documents, native-endian uint16 (vocab <= 65536) or uint32
  shard_00000.docs.npy  int64 start offset of each document inside that shard (its BOS)
  index.json            dtype, vocab_size, bos_id, per-shard {file, docs_file, num_tokens, num_docs,
                        input_docs, bytes}, totals, and `complete` (false while being written)
A shard holds whole documents and closes once it reaches `shard_tokens`. The index is rewritten
(atomically) after every shard with how many input documents the shard consumed, so an interrupted
run resumes after the last finished shard: no document is lost or written twice, provided `texts`
yields the same documents in the same order again. Empty documents are skipped.
"""

import itertools
import json
import multiprocessing
import os
from collections.abc import Iterable, Iterator

import numpy as np
import tqdm

from llm_jax.tokenizer.base import Tokenizer

INDEX_FILE = "index.json"
_worker_tokenizer: Tokenizer | None = None


def _init_worker(tokenizer: Tokenizer) -> None:
  global _worker_tokenizer
  _worker_tokenizer = tokenizer


def _text_bytes(text: str) -> int:
  try:
    return len(text.encode("utf-8", "surrogateescape"))
  except UnicodeEncodeError:
    return len(text.encode("utf-8", "replace"))


def _encode_docs(texts: list[str], tokenizer: Tokenizer | None = None):
  """(tokens_T uint32 with BOS before each doc, lengths_D (0: empty doc, skipped), bytes_D (UTF-8))."""
  tokenizer = tokenizer or _worker_tokenizer
  bos = tokenizer.bos_id
  ids = tokenizer.encode_batch(texts)
  lengths_D = np.array([len(x) + 1 if x else 0 for x in ids], np.int64)
  flat = list(itertools.chain.from_iterable([bos, *x] for x in ids if x))
  return np.array(flat, np.uint32), lengths_D, np.array([_text_bytes(t) for t in texts], np.int64)


def _write_atomic(path: str, write) -> None:
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    write(f)
  os.replace(tmp, path)


def _save_index(out_dir: str, index: dict) -> None:
  _write_atomic(os.path.join(out_dir, INDEX_FILE), lambda f: f.write(json.dumps(index, indent=1).encode()))


def _stats(index: dict) -> dict:
  content = index["num_tokens"] - index["num_docs"]  # BOS tokens stand for no text
  return {"documents": index["num_docs"], "input_documents": index["input_docs"],
          "bytes": index["num_bytes"], "tokens": index["num_tokens"], "shards": len(index["shards"]),
          "bytes_per_token": index["num_bytes"] / max(content, 1)}


def _batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
  it = iter(texts)
  while batch := list(itertools.islice(it, size)):
    yield batch


def write_shards(texts: Iterable[str], tokenizer: Tokenizer, out_dir: str, *, shard_tokens: int = 1 << 24,
                 num_workers: int | None = None, docs_per_task: int = 64, progress: bool = True) -> dict:
  """Tokenize `texts` (in document order) into shards under `out_dir`; resumes an interrupted run and
  returns at once if the shards are complete. `num_workers`: processes (None: all cores, 0: inline).
  Returns {documents, input_documents, bytes, tokens, shards, bytes_per_token (BOS excluded)}."""
  os.makedirs(out_dir, exist_ok=True)
  dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32
  fresh = {"format": 1, "dtype": np.dtype(dtype).name, "vocab_size": tokenizer.vocab_size,
           "bos_id": tokenizer.bos_id, "shard_tokens": shard_tokens, "complete": False, "shards": [],
           "num_tokens": 0, "num_docs": 0, "num_bytes": 0, "input_docs": 0}
  path = os.path.join(out_dir, INDEX_FILE)
  index = fresh
  if os.path.exists(path):
    with open(path) as f:
      index = json.load(f)
    if index["complete"]:
      return _stats(index)
    for key in ("dtype", "vocab_size", "bos_id", "shard_tokens"):
      if index[key] != fresh[key]:
        raise ValueError(f"cannot resume shards in {out_dir!r}: {key} was {index[key]}, now {fresh[key]}; "
                         "delete the directory to start over")
  total = len(texts) if hasattr(texts, "__len__") else None
  texts = itertools.islice(texts, index["input_docs"], None)  # skip what finished shards consumed

  cur_tokens, cur_lengths, cur_bytes = [], [], []

  def close_shard():
    nonlocal cur_tokens, cur_lengths, cur_bytes
    tokens = np.concatenate(cur_tokens).astype(dtype) if cur_tokens else np.zeros(0, dtype)
    lengths = np.concatenate(cur_lengths) if cur_lengths else np.zeros(0, np.int64)
    num_bytes = int(sum(b.sum() for b in cur_bytes))
    written = lengths[lengths > 0]
    starts = np.concatenate([[0], np.cumsum(written)[:-1]]).astype(np.int64)
    name = f"shard_{len(index['shards']):05d}"
    if written.size:
      _write_atomic(os.path.join(out_dir, name + ".bin"), lambda f: f.write(tokens.tobytes()))
      _write_atomic(os.path.join(out_dir, name + ".docs.npy"), lambda f: np.save(f, starts))
      index["shards"].append({"file": name + ".bin", "docs_file": name + ".docs.npy",
                              "num_tokens": int(tokens.size), "num_docs": int(written.size),
                              "input_docs": int(lengths.size), "bytes": num_bytes})
    elif index["shards"]:  # only empty documents since the last shard: credit them to it
      index["shards"][-1]["input_docs"] += int(lengths.size)
    index["num_tokens"] += int(tokens.size)
    index["num_docs"] += int(written.size)
    index["num_bytes"] += num_bytes
    index["input_docs"] += int(lengths.size)
    _save_index(out_dir, index)
    cur_tokens, cur_lengths, cur_bytes = [], [], []

  bar = tqdm.tqdm(total=total, initial=index["input_docs"], unit="doc", disable=not progress,
                  desc=f"shards -> {out_dir}", smoothing=0.1)
  pool = None
  if num_workers is None:
    num_workers = os.cpu_count() or 1
  try:
    batches = _batches(texts, docs_per_task)
    if num_workers > 0:
      pool = multiprocessing.get_context("spawn").Pool(num_workers, _init_worker, (tokenizer,))
      results = pool.imap(_encode_docs, batches, chunksize=1)
    else:
      results = (_encode_docs(b, tokenizer) for b in batches)
    have = 0  # tokens in the open shard
    for tokens_T, lengths_D, bytes_D in results:
      bar.update(lengths_D.size)
      # Docs [0, split) finish the open shard; the rest start the next one.
      while lengths_D.size:
        cum = np.cumsum(lengths_D)
        split = int(np.searchsorted(cum, shard_tokens - have)) + 1
        if split > lengths_D.size:
          cur_tokens.append(tokens_T)
          cur_lengths.append(lengths_D)
          cur_bytes.append(bytes_D)
          have += int(cum[-1])
          break
        used = int(cum[split - 1])
        cur_tokens.append(tokens_T[:used])
        cur_lengths.append(lengths_D[:split])
        cur_bytes.append(bytes_D[:split])
        close_shard()
        tokens_T, lengths_D, bytes_D, have = tokens_T[used:], lengths_D[split:], bytes_D[split:], 0
      bar.set_postfix(tokens=f"{index['num_tokens'] + have:,}", refresh=False)
    if cur_lengths:
      close_shard()
  finally:
    bar.close()
    if pool is not None:
      pool.terminate()
  index["complete"] = True
  _save_index(out_dir, index)
  return _stats(index)


class TokenShards:
  """Read-only view of a shard directory as one token stream (memory-mapped, nothing loaded)."""

  def __init__(self, directory: str):
    self.directory = directory
    path = os.path.join(directory, INDEX_FILE)
    if not os.path.exists(path):
      raise FileNotFoundError(f"no token shards in {directory!r} ({INDEX_FILE} missing): run the data "
                              "stage (data.shards.write_shards) first")
    with open(path) as f:
      self.index = json.load(f)
    if not self.index["complete"]:
      raise RuntimeError(f"token shards in {directory!r} are incomplete (the data stage was "
                         "interrupted): run it again to resume")
    self.dtype = np.dtype(self.index["dtype"])
    shards = self.index["shards"]
    self._maps = [np.memmap(os.path.join(directory, s["file"]), self.dtype, mode="r") for s in shards]
    self._offsets = np.cumsum([0] + [s["num_tokens"] for s in shards]).astype(np.int64)
    self._doc_starts = None

  def __getstate__(self):
    return {"directory": self.directory}

  def __setstate__(self, state):
    self.__init__(state["directory"])

  @property
  def num_tokens(self) -> int:
    return int(self.index["num_tokens"])

  @property
  def num_docs(self) -> int:
    return int(self.index["num_docs"])

  @property
  def num_bytes(self) -> int:
    return int(self.index["num_bytes"])

  @property
  def vocab_size(self) -> int:
    return int(self.index["vocab_size"])

  @property
  def bos_id(self) -> int:
    return int(self.index["bos_id"])

  def __len__(self) -> int:
    return self.num_tokens

  @property
  def doc_starts(self) -> np.ndarray:
    """int64[num_docs]: global stream offset of every document's BOS, ascending."""
    if self._doc_starts is None:
      parts = [np.load(os.path.join(self.directory, s["docs_file"])) + off
               for s, off in zip(self.index["shards"], self._offsets)]
      self._doc_starts = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return self._doc_starts

  def read(self, start: int, length: int) -> np.ndarray:
    """Tokens [start, start + length) of the stream (a fresh array), across shard boundaries."""
    start, length = int(start), int(length)
    if start < 0 or length < 0 or start + length > self.num_tokens:
      raise IndexError(f"read({start}, {length}) is outside the {self.num_tokens} tokens of "
                       f"{self.directory!r}")
    k = int(np.searchsorted(self._offsets, start, side="right")) - 1
    local = start - int(self._offsets[k]) if length else 0
    if not length or local + length <= self._maps[k].size:
      return np.array(self._maps[k][local:local + length]) if length else np.zeros(0, self.dtype)
    parts = []
    while length > 0:
      take = min(length, self._maps[k].size - local)
      parts.append(self._maps[k][local:local + take])
      length -= take
      k, local = k + 1, 0
    return np.concatenate(parts)
