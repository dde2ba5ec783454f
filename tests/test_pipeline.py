"""Grain pipeline: shapes, targets, packing semantics, checkpoint exactness, host sharding, mixing."""

import json

import numpy as np
import pytest

from llm_jax.data.pipeline import _pack_docs, make_dataset, make_iterator
from llm_jax.data.shards import TokenShards, write_shards
from llm_jax.tokenizer.bytes import ByteTokenizer

TOK = ByteTokenizer()
KEYS = {"tokens": np.int32, "targets": np.int32, "loss_mask": np.float32, "segment_ids": np.int32,
        "positions": np.int32}


def make_shards(path, n=300, letter=None, seed=0):
  """Documents of 1..40 random letters (or one repeated `letter`) followed by their number."""
  rng = np.random.default_rng(seed)
  texts = [(letter * int(rng.integers(1, 40)) if letter else
            "".join(rng.choice(list("abcdefghij"), int(rng.integers(1, 40))))) + str(i) for i in range(n)]
  write_shards(texts, TOK, str(path), shard_tokens=1000, num_workers=0, progress=False)
  return str(path)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
  return make_shards(tmp_path_factory.mktemp("shards"))


def take(it, n):
  return [next(it) for _ in range(n)]


@pytest.mark.parametrize("packing", ["window", "docs"])
def test_shapes_and_targets(shard_dir, packing):
  it = make_iterator(shard_dir, batch_size=4, seq_len=32, seed=0, packing=packing)
  stream = TokenShards(shard_dir).read(0, TokenShards(shard_dir).num_tokens)
  for batch in take(it, 5):
    assert set(batch) == set(KEYS)
    for k, dtype in KEYS.items():
      assert batch[k].shape == (4, 32) and batch[k].dtype == dtype, k
    np.testing.assert_array_equal(batch["tokens"][:, 1:], batch["targets"][:, :-1])
    if packing == "window":
      assert (batch["segment_ids"] == 1).all() and (batch["loss_mask"] == 1).all()
      np.testing.assert_array_equal(batch["positions"], np.tile(np.arange(32), (4, 1)))
      for row in batch["tokens"]:  # each row is a window of the stream
        start = np.flatnonzero((np.lib.stride_tricks.sliding_window_view(stream, 32) == row).all(1))
        assert (start % 32 == 0).any()


def test_docs_semantics(shard_dir):
  shards = TokenShards(shard_dir)
  bos = TOK.bos_id
  for batch in take(make_iterator(shard_dir, batch_size=8, seq_len=24, seed=1, packing="docs"), 10):
    for tok, tgt, seg, pos, mask in zip(*(batch[k] for k in
                                          ("tokens", "targets", "segment_ids", "positions", "loss_mask"))):
      valid = seg > 0
      assert (np.diff(seg[valid]) >= 0).all() and seg[0] == 1 and (tok[~valid] == 0).all()
      assert valid[:valid.sum()].all()  # padding only at the end
      # A new segment starts exactly at BOS (or at the row start), where positions restart.
      new = np.flatnonzero(np.diff(seg) > 0) + 1
      assert (tok[new] == bos).all() and (pos[new] == 0).all() and pos[0] == 0
      same = valid[1:] & (seg[1:] == seg[:-1])
      assert (pos[1:][same] == pos[:-1][same] + 1).all()
      # Targets crossing a document or into padding are masked; BOS is never a kept target.
      assert (mask[tgt == bos] == 0).all() and (mask[~valid] == 0).all()
      assert mask[valid].sum() >= valid.sum() - seg.max()
  assert shards.num_docs == 300


def test_pack_docs_plan():
  # docs [0,3) [3,20) (longer than row_len 8: chunks [3,11) [11,19) [19,20)) [20,21) [21,25)
  starts, lengths = _pack_docs(np.array([0, 3, 20, 21]), 25, 8)
  np.testing.assert_array_equal(starts, [0, 3, 11, 19])
  np.testing.assert_array_equal(lengths, [3, 8, 8, 6])
  assert (lengths <= 8).all() and (starts + lengths)[-1] == 25


@pytest.mark.parametrize("packing", ["window", "docs"])
def test_state_restore_exact(shard_dir, packing):
  kwargs = dict(batch_size=4, seq_len=16, seed=3, packing=packing)
  it = make_iterator(shard_dir, **kwargs)
  take(it, 7)
  state = json.loads(json.dumps(it.get_state()))
  expected = take(it, 5)
  it2 = make_iterator(shard_dir, **kwargs)
  it2.set_state(state)
  for a, b in zip(expected, take(it2, 5)):
    for k in KEYS:
      np.testing.assert_array_equal(a[k], b[k])


def test_seed_determinism_and_epochs(shard_dir):
  def tokens(seed, n=6, **kw):
    return np.stack([b["tokens"] for b in take(make_iterator(shard_dir, batch_size=4, seq_len=16, seed=seed,
                                                             **kw), n)])
  np.testing.assert_array_equal(tokens(5), tokens(5))
  assert not np.array_equal(tokens(5), tokens(6))
  # Two finite epochs: every row exactly twice, each epoch in a different order.
  ds = make_dataset(shard_dir, batch_size=1, seq_len=16, seed=0, num_epochs=2)
  rows = [tuple(b["tokens"][0]) for b in iter(ds.to_iter_dataset())]
  half = len(rows) // 2
  assert sorted(rows[:half]) == sorted(rows[half:]) and rows[:half] != rows[half:]
  assert len(set(rows[:half])) == half
  unshuffled = [b["tokens"][0] for b in take(make_iterator(shard_dir, batch_size=1, seq_len=16, seed=0,
                                                           shuffle=False), 3)]
  np.testing.assert_array_equal(unshuffled[1], TokenShards(shard_dir).read(16, 16))


@pytest.mark.parametrize("packing", ["window", "docs"])
def test_host_sharding_disjoint(shard_dir, packing):
  seen = []
  for p in range(3):
    ds = make_dataset(shard_dir, batch_size=2, seq_len=16, seed=0, packing=packing, num_epochs=1,
                      process_index=p, process_count=3)
    seen.append([tuple(r) for b in iter(ds.to_iter_dataset()) for r in b["tokens"]])
  assert len(seen[0]) == len(seen[1]) == len(seen[2])
  for a in range(3):
    for b in range(a + 1, 3):
      assert not set(seen[a]) & set(seen[b])


def test_mixture_weights(tmp_path):
  a = make_shards(tmp_path / "a", n=400, letter="a")
  b = make_shards(tmp_path / "b", n=400, letter="b", seed=1)
  it = make_iterator([(a, 3.0), (b, 1.0)], batch_size=8, seq_len=16, seed=0)
  counts = {"a": 0, "b": 0}
  for batch in take(it, 25):
    for row in batch["tokens"]:
      counts["a" if (row == ord("a")).sum() > (row == ord("b")).sum() else "b"] += 1
  assert 0.65 < counts["a"] / 200 < 0.85
  state = it.get_state()
  nxt = next(it)
  it2 = make_iterator([(a, 3.0), (b, 1.0)], batch_size=8, seq_len=16, seed=0)
  it2.set_state(state)
  np.testing.assert_array_equal(next(it2)["tokens"], nxt["tokens"])


def test_errors(shard_dir, tmp_path):
  with pytest.raises(ValueError, match="packing"):
    make_iterator(shard_dir, batch_size=2, seq_len=8, seed=0, packing="bad")
  with pytest.raises(ValueError, match="too few"):
    make_iterator(shard_dir, batch_size=2, seq_len=10**7, seed=0)
  with pytest.raises(ValueError, match="sources must be"):
    make_iterator([shard_dir], batch_size=2, seq_len=8, seed=0)
  with pytest.raises(FileNotFoundError, match="run the data stage"):
    make_iterator(str(tmp_path), batch_size=2, seq_len=8, seed=0)
