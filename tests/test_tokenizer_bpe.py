"""Trained sentencepiece BPE: id layout, exact round trips, specials, byte lengths, stage skipping."""

import os
import pickle
import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from llm_jax.tokenizer import load_tokenizer
from llm_jax.tokenizer.bpe import SentencePieceTokenizer
from llm_jax.tokenizer.special import SPECIAL_TOKENS
from llm_jax.tokenizer.train import NUM_RESERVED, default_config, train_tokenizer

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "函数", "東京", "مرحبا",
         "שלום", "😀", "👍🏽", "12345", "    indent", "\ttab", "\n", "\n\n", "é", "naïve", "Ж"]


def corpus(n=400, seed=0):
  rng = random.Random(seed)
  return [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(n)]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
  cfg = default_config()
  cfg.vocab_size = 400
  return train_tokenizer(cfg, corpus(), str(tmp_path_factory.mktemp("tok") / "tokenizer"))


def test_id_layout(tok):
  for i, s in enumerate(SPECIAL_TOKENS):
    assert tok.special_id(s) == i
  assert tok.bos_id == 0 and tok.eos_id is None
  assert tok.id_to_piece(len(SPECIAL_TOKENS)) == "<unk>"
  assert tok.id_to_piece(len(SPECIAL_TOKENS) + 1) == "<0x00>"
  assert tok.id_to_piece(NUM_RESERVED - 1) == "<0xFF>"
  assert tok.vocab_size == 400
  with pytest.raises(KeyError, match="no special token"):
    tok.special_id("<|nope|>")


def test_literal_special_text_is_ordinary(tok):
  for s in SPECIAL_TOKENS:
    ids = tok.encode(f"a {s} b{s}")
    assert not set(ids) & set(range(len(SPECIAL_TOKENS))), s
    assert tok.decode(ids) == f"a {s} b{s}"
  assert tok.decode([tok.bos_id, *tok.encode("hi")]) == "<|bos|>hi"


@pytest.mark.parametrize("text", [
    "", " ", "  leading", "trailing  ", "a\n\n\nb", "\t\tx", "\r\n", "\x00\x01\x7f", "▁", "a▁▁b ▁",
    "😀👍🏽👨‍👩‍👧", "東京 函数", "مرحبا بالعالم", "\u200f\u202eRTL", "12345678901234567890",
    "\ufeffbom",
    "x" * 5000, "\u0301combining", "<|bos|><|user_start|>"])
def test_round_trip_examples(tok, text):
  ids = tok.encode(text)
  assert tok.decode(ids) == text
  assert tok.token_byte_lengths()[ids].sum() == len(text.encode())


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.text(
    alphabet=st.sampled_from(list(" \t\n\r\u2581ab東😀\x00")), max_size=30))
def test_round_trip_property(tok, text):
  ids = tok.encode(text)
  assert tok.decode(ids) == text
  assert int(tok.token_byte_lengths()[ids].sum()) == len(text.encode())
  assert min(ids, default=NUM_RESERVED) >= len(SPECIAL_TOKENS) + 1  # no specials, no <unk>


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=40))
def test_surrogateescape_bytes(tok, data):
  text = data.decode("utf-8", errors="surrogateescape")
  ids = tok.encode(text)
  assert tok.decode(ids, errors="surrogateescape") == text
  assert tok.decode(ids) == data.decode("utf-8", errors="replace")
  assert int(tok.token_byte_lengths()[ids].sum()) == len(data)


def test_other_lone_surrogate_becomes_replacement(tok):
  assert tok.decode(tok.encode("a\ud800b")) == "a\ufffdb"


def test_byte_lengths(tok):
  lengths = tok.token_byte_lengths()
  assert lengths.shape == (tok.vocab_size,) and lengths.dtype == np.int32
  assert (lengths[:len(SPECIAL_TOKENS) + 1] == 0).all()
  assert (lengths[len(SPECIAL_TOKENS) + 1:NUM_RESERVED] == 1).all()
  assert (lengths[NUM_RESERVED:] >= 1).all()


def test_learns_merges(tok):
  text = " ".join(corpus(5, seed=1))
  assert len(tok.encode(text)) < len(text.encode()) / 2


def test_save_load_pickle(tok, tmp_path):
  tok.save(str(tmp_path))
  for other in (load_tokenizer(str(tmp_path)), pickle.loads(pickle.dumps(tok))):
    assert isinstance(other, SentencePieceTokenizer)
    assert other.encode("the quick 東京 ▁x") == tok.encode("the quick 東京 ▁x")


def test_split_digits_and_decode_errors(tok):
  pieces = [tok.id_to_piece(i) for i in tok.encode("12345")]
  assert all(len(p.strip("▁")) <= 1 for p in pieces)
  with pytest.raises(ValueError, match="ids must be ints"):
    tok.decode([tok.vocab_size])
  with pytest.raises(ValueError, match="ids must be ints"):
    tok.decode([-1])


def test_stage_skips_when_artifact_exists(tok, tmp_path):
  cfg = default_config()
  cfg.vocab_size = 420
  out = str(tmp_path / "t")
  first = train_tokenizer(cfg, corpus(50), out)
  again = train_tokenizer(cfg, iter(()), out)  # no text: must load, not train
  assert again.vocab_size == first.vocab_size == 420
  assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]


def test_bytes_kind_and_errors(tmp_path):
  cfg = default_config()
  cfg.kind = "bytes"
  assert train_tokenizer(cfg, [], str(tmp_path / "b")).vocab_size == 256 + len(SPECIAL_TOKENS)
  cfg.kind = "bpe"
  cfg.vocab_size = 100
  with pytest.raises(ValueError, match="too small"):
    train_tokenizer(cfg, corpus(5), str(tmp_path / "c"))
  cfg.kind = "wordpiece"
  with pytest.raises(ValueError, match="unknown"):
    train_tokenizer(cfg, [], str(tmp_path / "d"))


def test_foreign_sentencepiece_model(tmp_path):
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus(100)), model_prefix=str(tmp_path / "tokenizer"),
                                 vocab_size=150, model_type="bpe", minloglevel=2, logstream=open(os.devnull, "w"))
  tok = load_tokenizer(str(tmp_path))
  assert isinstance(tok, SentencePieceTokenizer)
  assert tok.bos_id == 1 and tok.eos_id == 2 and tok.decode(tok.encode("the quick fox")) == "the quick fox"


def test_long_text_and_cap(tmp_path):
  cfg = default_config()
  cfg.vocab_size = 320
  cfg.max_sentence_length = 256
  cfg.max_train_bytes = 2000
  tok = train_tokenizer(cfg, ["abc def " * 10000, "x\n" * 10000], str(tmp_path / "t"))
  assert tok.decode(tok.encode("abc def")) == "abc def"
