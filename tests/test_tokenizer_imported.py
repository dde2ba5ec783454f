"""Imported tokenizers (HF tokenizer.json, tiktoken rank files) built locally with `tokenizers`."""

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from llm_jax.tokenizer import load_tokenizer
from llm_jax.tokenizer.hf import HFTokenizer
from llm_jax.tokenizer.tiktoken_bpe import LLAMA3_PATTERN, TiktokenTokenizer, llama3_special_tokens

TEXTS = ["Hello world, the quick brown fox 123456 jumps!\n\n  indented\tcode()",
         "東京 函数 مرحبا 😀 naïve café", "don't can't we'll THE The the"] * 30
SAMPLES = ["Hello <|endoftext|> world", "  spaces\n\n\ttabs", "😀👍🏽 東京", "<|begin_of_text|>x", "",
           "don't 12345678"]


def train_hf(llama_style: bool, specials: list[str]) -> Tokenizer:
  tok = Tokenizer(models.BPE())
  if llama_style:  # Llama 3's tokenizer.json: regex split, then byte-level without GPT-2's regex
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  else:  # GPT-2
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  tok.train_from_iterator(TEXTS, trainer)
  return tok


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("gpt2")
  train_hf(False, ["<|endoftext|>"]).save(str(d / "tokenizer.json"))
  return d


def test_hf_gpt2(gpt2_dir):
  ref = Tokenizer.from_file(str(gpt2_dir / "tokenizer.json"))
  tok = load_tokenizer(str(gpt2_dir))
  assert isinstance(tok, HFTokenizer) and tok.vocab_size == ref.get_vocab_size()
  eot = ref.token_to_id("<|endoftext|>")
  assert tok.bos_id == tok.eos_id == tok.special_id("<|endoftext|>") == eot
  with pytest.raises(KeyError):
    tok.special_id("<|user_start|>")
  for s in SAMPLES:
    ids = tok.encode(s)
    assert eot not in ids and tok.decode(ids) == s
    assert int(tok.token_byte_lengths()[ids].sum()) == len(s.encode())
  plain = "the quick brown fox"
  assert tok.encode(plain) == ref.encode(plain).ids
  assert tok.decode([eot]) == "<|endoftext|>"
  again = pickle.loads(pickle.dumps(tok))
  assert again.encode(SAMPLES[0]) == tok.encode(SAMPLES[0])


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_hf_round_trip(gpt2_dir, text):
  tok = load_tokenizer(str(gpt2_dir))
  ids = tok.encode(text)
  assert tok.decode(ids) == text
  assert int(tok.token_byte_lengths()[ids].sum()) == len(text.encode())


def test_hf_config_and_save(tmp_path):
  train_hf(True, ["<|begin_of_text|>", "<|end_of_text|>"]).save(str(tmp_path / "tokenizer.json"))
  json.dump({"bos_token": {"content": "<|begin_of_text|>"}, "eos_token": "<|end_of_text|>"},
            open(tmp_path / "tokenizer_config.json", "w"))
  tok = load_tokenizer(str(tmp_path))
  assert tok.decode([tok.bos_id]) == "<|begin_of_text|>" and tok.eos_id == tok.bos_id + 1
  tok.save(str(tmp_path / "copy"))
  assert load_tokenizer(str(tmp_path / "copy")).encode(SAMPLES[1]) == tok.encode(SAMPLES[1])


def ranks_from_hf(tok: Tokenizer) -> dict[bytes, int]:
  """Byte-level BPE vocab -> tiktoken ranks (trainer ids follow merge order)."""
  # GPT-2's byte -> printable character table: printable bytes map to themselves, the rest to 256+.
  printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
  others = [b for b in range(256) if b not in printable]
  char_to_byte = {chr(b): b for b in printable} | {chr(256 + i): b for i, b in enumerate(others)}
  assert set(char_to_byte) == set(pre_tokenizers.ByteLevel.alphabet())
  vocab = tok.get_vocab(with_added_tokens=False)
  return {bytes(char_to_byte[c] for c in piece): i for piece, i in vocab.items()}


def test_tiktoken_matches_hf(tmp_path):
  hf = train_hf(True, [])
  ranks = ranks_from_hf(hf)
  assert sorted(ranks.values()) == list(range(len(ranks)))
  TiktokenTokenizer(ranks).save(str(tmp_path))
  tok = load_tokenizer(str(tmp_path))
  assert isinstance(tok, TiktokenTokenizer)
  assert tok.vocab_size == len(ranks) + 256
  assert tok.bos_id == len(ranks) == tok.special_id("<|begin_of_text|>")
  assert tok.eos_id == len(ranks) + 1 and tok.special_id(llama3_special_tokens()[9]) == len(ranks) + 9
  for s in SAMPLES + TEXTS[:3]:
    assert tok.encode(s) == hf.encode(s).ids, s
    assert tok.decode(tok.encode(s)) == s
    assert int(tok.token_byte_lengths()[tok.encode(s)].sum()) == len(s.encode())
  assert tok.bos_id not in tok.encode("<|begin_of_text|>")
  assert pickle.loads(pickle.dumps(tok)).encode(SAMPLES[0]) == tok.encode(SAMPLES[0])


def test_tiktoken_llama3_layout_without_config(tmp_path):
  ranks = ranks_from_hf(train_hf(True, []))
  TiktokenTokenizer(ranks).save(str(tmp_path))
  (tmp_path / "tiktoken_config.json").unlink()  # a bare Llama 3 tokenizer.model
  tok = load_tokenizer(str(tmp_path))
  assert tok.special_id("<|eot_id|>") == len(ranks) + 9
  assert np.array_equal(tok.token_byte_lengths()[len(ranks):], np.zeros(256))
