"""Preference data: JSONL formats, pairs of a ranking, HF row parsers (offline), encoding to arrays;
plus `tiny_sft_stage`, the fine-tuned stage the reward-model, DPO and PPO tests start from."""

import collections
import json
import os
import sys

import jax
import ml_collections
import numpy as np
import pytest

from conftest import tiny_config
from llm_jax.data import preference_batches, preference_hf, preferences
from llm_jax.data.preferences import Pair, Ranking
from llm_jax.tokenizer.bytes import ByteTokenizer

TOK = ByteTokenizer()
PROMPT = ({"role": "user", "content": "hi"},)


def tiny_cfg(seq_len: int = 64):
  c = tiny_config(seq_len=seq_len)
  c.model.update(dict(max_seq_len=seq_len, num_layers=1))  # one block: half the compile time
  c.checkpoint.update(dict(every_steps=1000, async_save=False))
  return c


def numpy_init(abstract_params, shardings):
  """N(0, 0.02) matrices and unit norm scales drawn with numpy (no RNG compiles; see test_sft.py)."""
  rng = np.random.default_rng(0)
  one = lambda x, s: jax.device_put((np.ones(x.shape) if len(x.shape) == 1 else rng.normal(0, 0.02, x.shape))
                                    .astype(np.float32), s)
  return jax.tree.map(one, abstract_params, shardings)


def tiny_sft_stage(workdir: str, stage: str = "sft", cfg=None) -> None:
  """A tiny random 'fine-tuned' stage (loop.train with 0 steps saves its initial parameters) and the
  byte tokenizer, in `workdir`."""
  from llm_jax.data import sft_pipeline
  from llm_jax.train import loop
  cfg = cfg or tiny_cfg()
  TOK.save(os.path.join(workdir, "tokenizer"))
  rows = sft_pipeline.pack([list(PROMPT) + [{"role": "assistant", "content": "hello"}]], TOK, cfg.train.seq_len)
  zero = ml_collections.ConfigDict(cfg.to_dict())
  zero.train.steps = 0
  loop.train(zero, workdir, stage, lambda b: sft_pipeline.make_iterator(rows, batch_size=b, seed=0), None,
             TOK.token_byte_lengths(), initial_params=numpy_init)


def test_jsonl_round_trip_both_formats(tmp_path):
  ranking = Ranking(PROMPT, ("best", "mid", "worst"), (1.0, 0.5, 0.0), answer="7")
  pair = Pair(PROMPT, "yes", "no")
  preferences.write_jsonl(str(tmp_path / "r.jsonl"), [ranking])
  preferences.write_jsonl(str(tmp_path / "p.jsonl"), [pair])
  with open(tmp_path / "p.jsonl") as f:
    assert json.loads(f.readline()) == {"prompt": list(PROMPT), "chosen": "yes", "rejected": "no"}
  got = preferences.read_jsonl(str(tmp_path))
  assert got == [preferences.ranking_of(pair), ranking]
  assert preferences.pairs_of(ranking) == [Pair(PROMPT, "best", "mid"), Pair(PROMPT, "best", "worst"),
                                           Pair(PROMPT, "mid", "worst")]
  (tmp_path / "bad.jsonl").write_text('{"prompt": "q", "chosen": "a"}\nnot json\n')
  with pytest.raises(ValueError, match="bad.jsonl:1: .*'completions'"):
    preferences.read_jsonl(str(tmp_path / "bad.jsonl"))
  skipped = collections.Counter()
  assert preferences.read_jsonl(str(tmp_path / "bad.jsonl"), skipped) == [] and skipped == {"bad_record": 1,
                                                                                              "bad_json": 1}
  with pytest.raises(FileNotFoundError, match="no preference JSONL"):
    preferences.read_jsonl(str(tmp_path / "none*.jsonl"))
  assert preferences.data_hash([ranking]) != preferences.data_hash([preferences.ranking_of(pair)])


def test_hf_parsers_on_hand_written_rows():
  hh = {"chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: Sure?\n\nAssistant: Yes, 4.",
        "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: Sure?\n\nAssistant: No idea."}
  got = preference_hf.parse_hh(hh)
  assert got.prompt == ({"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."},
                        {"role": "user", "content": "Sure?"})
  assert got.completions == ("Yes, 4.", "No idea.")
  assert preference_hf.parse_hh({"chosen": hh["chosen"], "rejected": "\n\nHuman: Other?\n\nAssistant: x"}) is None
  uf = {"instruction": "Name a color.", "completions": [
      {"response": "Blue.", "overall_score": 6.0}, {"response": "Red!", "overall_score": 8.5},
      {"response": "", "overall_score": 9.0}, {"response": "Green.", "overall_score": 6.0}]}
  got = preference_hf.parse_ultrafeedback(uf)
  assert got.completions == ("Red!", "Blue.", "Green.") and got.scores == (8.5, 6.0, 6.0)
  msgs = lambda a: [{"role": "user", "content": "q"}, {"role": "assistant", "content": a}]
  got = preference_hf.parse_binarized({"chosen": msgs("good"), "rejected": msgs("bad"), "score_chosen": 9,
                                       "score_rejected": 2})
  assert got == Ranking(({"role": "user", "content": "q"},), ("good", "bad"), (9.0, 2.0))


def test_hf_loader_fails_in_one_line_offline(monkeypatch):
  with pytest.raises(ValueError, match="unknown preference set 'nope'"):
    preference_hf.load_hf("nope")
  monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
  with pytest.raises(RuntimeError, match="needs the `datasets` package"):
    preference_hf.load_hf("hh")

  class Offline:
    @staticmethod
    def load_dataset(*args, **kwargs):
      raise ConnectionError("Couldn't reach huggingface.co\nmore lines")

  monkeypatch.setitem(sys.modules, "datasets", Offline)
  with pytest.raises(RuntimeError, match=r"could not be loaded \(offline\?\): Couldn't reach huggingface.co$"):
    preference_hf.load_hf("ultrafeedback_binarized", "test")


def test_encode_pads_rankings_and_skips_what_does_not_fit():
  rankings = [Ranking(PROMPT, ("long reply", "short", "x")), Ranking(PROMPT, ("a", "b")),
              Ranking(PROMPT, ("y" * 100, "fits")), Ranking(PROMPT, ("ok", ""))]
  arrays = preference_batches.encode(rankings, TOK, seq_len=32)
  assert arrays.tokens.shape == (2, 3, 32) and arrays.valid.tolist() == [[True] * 3, [True, True, False]]
  assert arrays.stats["skipped"] == {"reply_too_long": 1, "reply_empty_content": 1, "ranking_under_two_replies": 2}
  n = arrays.lengths[0, 1]
  assert TOK.decode(arrays.tokens[0, 1, :n]).endswith("short<|assistant_end|>")
  assert TOK.decode(arrays.tokens[0, 1][arrays.loss_mask[0, 1] > 0]) == "short<|assistant_end|>"
  batches = list(preference_batches.eval_batches(arrays, batch_size=4))
  assert len(batches) == 1 and batches[0]["valid"].sum() == 5
  a, b = (preference_batches.train_batch(arrays, s, 1, seed=0)["lengths"] for s in (0, 1))
  assert sorted([a[0, 0], b[0, 0]]) == sorted(arrays.lengths[:, 0])  # one epoch sees every ranking once


def test_preference_stages_need_the_sft_stage(tmp_path):
  from llm_jax.posttrain.preference_data import require_sft
  TOK.save(str(tmp_path / "tokenizer"))
  with pytest.raises(SystemExit, match=r"checkpoints/sft; run .*configs/sft.py"):
    require_sft(tiny_cfg(), str(tmp_path))
