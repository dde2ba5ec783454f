"""Token shards: layout, reading across shards, resume after interruption, worker parity."""

import json
import os

import numpy as np
import pytest

from llm_jax.data.shards import TokenShards, write_shards
from llm_jax.tokenizer.bytes import ByteTokenizer
from llm_jax.tokenizer.train import default_config, train_tokenizer

TOK = ByteTokenizer()


class Interrupted(Exception):
  pass


def docs(n=200):
  return [f"doc {i} " + "é" * (i % 7) + "x" * (i % 13) if i % 17 else "" for i in range(n)]


def expected_stream(texts):
  out = []
  for t in texts:
    if t:
      out += [TOK.bos_id] + TOK.encode(t)
  return np.array(out)


def test_write_and_read(tmp_path):
  texts = docs()
  stats = write_shards(texts, TOK, str(tmp_path), shard_tokens=500, num_workers=0, progress=False)
  shards = TokenShards(str(tmp_path))
  stream = expected_stream(texts)
  assert shards.dtype == np.uint16 and shards.num_tokens == stream.size == stats["tokens"]
  nonempty = [t for t in texts if t]
  assert shards.num_docs == stats["documents"] == len(nonempty)
  assert stats["input_documents"] == len(texts) and stats["shards"] > 3
  assert stats["bytes"] == sum(len(t.encode()) for t in texts)
  assert stats["bytes_per_token"] == pytest.approx(1.0)
  np.testing.assert_array_equal(shards.read(0, shards.num_tokens), stream)
  for start, length in [(0, 1), (490, 30), (1, 1500), (shards.num_tokens - 5, 5), (7, 0)]:
    np.testing.assert_array_equal(shards.read(start, length), stream[start:start + length])
  np.testing.assert_array_equal(shards.doc_starts, np.flatnonzero(stream == TOK.bos_id))
  with pytest.raises(IndexError, match="outside"):
    shards.read(shards.num_tokens - 1, 2)
  index = json.load(open(tmp_path / "index.json"))
  assert index["complete"] and all(s["num_tokens"] >= 500 for s in index["shards"][:-1])
  assert sum(s["input_docs"] for s in index["shards"]) == len(texts)


def test_resume_after_interruption(tmp_path):
  texts = docs(300)

  def crashing(n):
    for i, t in enumerate(texts):
      if i == n:
        raise Interrupted
      yield t

  for n in (120, 121, 250):  # interrupt three times, at different places
    with pytest.raises(Interrupted):
      write_shards(crashing(n), TOK, str(tmp_path), shard_tokens=400, num_workers=0, progress=False)
  with pytest.raises(RuntimeError, match="incomplete"):
    TokenShards(str(tmp_path))
  stats = write_shards(iter(texts), TOK, str(tmp_path), shard_tokens=400, num_workers=0, progress=False)
  shards = TokenShards(str(tmp_path))
  np.testing.assert_array_equal(shards.read(0, shards.num_tokens), expected_stream(texts))
  assert stats["input_documents"] == len(texts)
  assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
  # Complete: a rerun does nothing, even with no input.
  assert write_shards([], TOK, str(tmp_path), shard_tokens=400, progress=False) == stats
  with pytest.raises(Interrupted):
    write_shards(crashing(150), TOK, str(tmp_path / "other"), shard_tokens=400, num_workers=0,
                 progress=False)
  with pytest.raises(ValueError, match="cannot resume"):
    write_shards(texts, TOK, str(tmp_path / "other"), shard_tokens=300, num_workers=0, progress=False)


def test_workers_match_inline(tmp_path):
  texts = docs(150)
  write_shards(texts, TOK, str(tmp_path / "a"), shard_tokens=300, num_workers=0, progress=False)
  write_shards(texts, TOK, str(tmp_path / "b"), shard_tokens=300, num_workers=2, docs_per_task=8,
               progress=False)
  a, b = TokenShards(str(tmp_path / "a")), TokenShards(str(tmp_path / "b"))
  np.testing.assert_array_equal(a.read(0, a.num_tokens), b.read(0, b.num_tokens))
  assert a.index["shards"] == b.index["shards"]


def test_workers_with_trained_tokenizer(tmp_path):
  cfg = default_config()
  cfg.vocab_size = 400
  tok = train_tokenizer(cfg, docs(300) + ["東京 😀 ▁"] * 20, str(tmp_path / "tok"))
  texts = docs(80) + ["東京 😀 ▁ <|bos|>"] * 5
  stats = write_shards(texts, tok, str(tmp_path / "s"), shard_tokens=200, num_workers=2, docs_per_task=16,
                       progress=False)
  shards = TokenShards(str(tmp_path / "s"))
  stream = np.concatenate([[tok.bos_id] + tok.encode(t) for t in texts if t])
  np.testing.assert_array_equal(shards.read(0, shards.num_tokens), stream)
  assert stats["bytes_per_token"] > 1.5


def test_missing_index_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="run the data stage"):
    TokenShards(str(tmp_path))
