"""Conversation sources and SFT packing: segments never mix, masks follow the render, resumable iterator."""

import collections
import json

import numpy as np
import pytest

from llm_jax.data import conversations, sft_pipeline
from llm_jax.tasks import make_task
from llm_jax.tokenizer.bytes import ByteTokenizer
from llm_jax.tokenizer.chat import render

TOK = ByteTokenizer()
CONVS = make_task("arithmetic").conversations("train", 30) + make_task("identity").conversations("train", 30)


@pytest.fixture(scope="module")
def rows():
  return sft_pipeline.pack(CONVS, TOK, 512, seed=0)


def test_packing_keeps_conversations_apart(rows):
  assert rows.stats["conversations"] == len(CONVS) and rows.stats["skipped"] == {}
  rendered = {tuple(render(c, TOK)[0]) for c in CONVS}
  found = 0
  for r in range(len(rows)):
    seg, pos = rows.segment_ids[r], rows.positions[r]
    valid = seg > 0
    assert valid[:valid.sum()].all() and (rows.loss_mask[r][~valid] == 0).all()
    for s in np.unique(seg[valid]):
      span = np.flatnonzero(seg == s)
      assert (np.diff(span) == 1).all()  # contiguous
      np.testing.assert_array_equal(pos[span], np.arange(len(span)))  # positions restart
      ids = list(rows.tokens[r, span]) + [rows.targets[r, span[-1]]]
      assert tuple(ids) in rendered  # a whole conversation, nothing from its neighbours
      mask = render([c for c in CONVS if tuple(render(c, TOK)[0]) == tuple(ids)][0], TOK)[1]
      np.testing.assert_array_equal(rows.loss_mask[r, span], mask[1:])  # target i's mask is render mask i+1
      found += 1
  assert found == len(CONVS)
  assert rows.stats["fill"] > 0.7


def test_attention_mask_blocks_other_segments(rows):
  from llm_jax.model.attention import causal_mask
  seg = rows.segment_ids[:2]
  allowed = np.asarray(causal_mask(seg.shape[1], seg))
  b, i, j = np.nonzero(allowed)
  assert (seg[b, i] == seg[b, j]).all()


def test_truncation_and_skips_are_counted():
  long = [{"role": "user", "content": "q" * 50}, {"role": "assistant", "content": "a" * 20},
          {"role": "user", "content": "q" * 50}, {"role": "assistant", "content": "a" * 20}]
  too_long = [{"role": "user", "content": "x" * 500}, {"role": "assistant", "content": "y"}]
  bad = [{"role": "assistant", "content": "hi"}]
  packed = sft_pipeline.pack([long, too_long, bad], TOK, 100)
  assert packed.stats["skipped"] == {"too_long": 1, "role_order": 1}
  assert packed.stats["conversations"] == 1 and packed.stats["tokens"] == len(render(long[:2], TOK)[0]) - 1


def test_iterator_resumes_and_shards(rows):
  it = sft_pipeline.make_iterator(rows, batch_size=2, seed=1)
  for _ in range(3):
    next(it)
  state = json.loads(json.dumps(it.get_state()))
  want = [next(it) for _ in range(4)]
  again = sft_pipeline.make_iterator(rows, batch_size=2, seed=1)
  again.set_state(state)
  for a, w in zip([next(again) for _ in range(4)], want):
    assert set(a) == set(sft_pipeline.KEYS) and a["tokens"].shape == (2, 512)
    for k in w:
      np.testing.assert_array_equal(a[k], w[k])
  seen = []
  for host in range(2):
    batches = list(sft_pipeline.make_iterator(rows, batch_size=1, seed=1, shuffle=False, num_epochs=1,
                                              process_index=host, process_count=2))
    seen.append({b["tokens"].tobytes() for b in batches})
  assert not seen[0] & seen[1] and len(seen[0]) == len(rows) // 2


def test_finite_iterator_pads_last_batch(rows):
  batches = list(sft_pipeline.make_iterator(rows, batch_size=len(rows) - 1, seed=0, shuffle=False, num_epochs=1))
  assert len(batches) == 2 and batches[1]["tokens"].shape[0] == len(rows) - 1
  assert batches[1]["loss_mask"][1:].sum() == 0 and (batches[1]["segment_ids"][1:] == 0).all()


def test_jsonl_reading_counts_bad_lines(tmp_path):
  good = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
  path = tmp_path / "chats.jsonl"
  path.write_text("\n".join([json.dumps({"messages": good}), json.dumps(good), "{not json",
                             json.dumps({"messages": [{"role": "robot", "content": "x"}]}),
                             json.dumps({"messages": [{"role": "user", "content": ""}]})]) + "\n")
  skipped = collections.Counter()
  got = list(conversations.valid(conversations.read_jsonl(str(path), skipped), skipped))
  assert got == [good, good]
  assert skipped == {"bad_json": 1, "unknown_role": 1, "empty_content": 1}
  with pytest.raises(FileNotFoundError):
    list(conversations.read_jsonl(str(tmp_path / "nothing*.jsonl"), skipped))


def test_oasst_threads_follow_best_rank():
  rows = [
      dict(message_id="q", parent_id=None, role="prompter", text="Q?", lang="en", rank=None),
      dict(message_id="a1", parent_id="q", role="assistant", text="worse", lang="en", rank=1),
      dict(message_id="a0", parent_id="q", role="assistant", text="best", lang="en", rank=0),
      dict(message_id="f", parent_id="a0", role="prompter", text="more?", lang="en", rank=0),
      dict(message_id="q2", parent_id=None, role="prompter", text="unanswered", lang="en", rank=None),
      dict(message_id="de", parent_id=None, role="prompter", text="Hallo", lang="de", rank=None)]
  assert conversations.oasst_threads(rows) == [[{"role": "user", "content": "Q?"},
                                                {"role": "assistant", "content": "best"}]]


def test_mixture_weights_and_report(tmp_path):
  path = tmp_path / "mine.jsonl"
  conversations.write_jsonl(str(path), [[{"role": "user", "content": f"q{i}"},
                                         {"role": "assistant", "content": f"a{i}"}] for i in range(40)])
  convs, report = conversations.mixture(f"identity@1,arithmetic@2,files:{path}@1", 100, seed=0, val_fraction=0.3)
  assert len(convs) == 100 and report["identity"]["requested"] == 25 and report["arithmetic"]["requested"] == 50
  assert report[f"files:{path}"]["available"] < 40 and report[f"files:{path}"]["passes"] >= 1
  again, _ = conversations.mixture(f"identity@1,arithmetic@2,files:{path}@1", 100, seed=0, val_fraction=0.3)
  assert again == convs
  test, _ = conversations.mixture(f"files:{path}", 10, "test", seed=0, val_fraction=0.3)
  assert not {json.dumps(c) for c in test} & {json.dumps(c) for c in convs}
  few, report = conversations.mixture("identity@0.1,arithmetic@0.6,spelling@0.3", 4, seed=0)
  assert len(few) == 4 and [report[k]["requested"] for k in ("identity", "arithmetic", "spelling")] == [1, 2, 1]
  with pytest.raises(ValueError, match="bad mixture part"):
    conversations.parse_mixture("chess@1")


def test_hf_loader_fails_in_one_line_offline():
  with pytest.raises(RuntimeError) as e:
    conversations.load_hf("smoltalk", max_items=1)
  assert "\n" not in str(e.value) and "smoltalk" in str(e.value)
