"""Our sentencepiece BPE vs Hugging Face `tokenizers` byte-level BPE on the same text and vocab size.

Used by `python -m llm_jax.bench tokenizer`: compression (bytes per token) on held-out text, training
and encoding throughput (MB/s, single-threaded encode for both), and round-trip exactness.
"""

import time
from collections.abc import Sequence

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from llm_jax.tokenizer.base import Tokenizer as OurTokenizer
from llm_jax.tokenizer.hf import HFTokenizer
from llm_jax.tokenizer.special import SPECIAL_TOKENS
from llm_jax.tokenizer.tiktoken_bpe import LLAMA3_PATTERN
from llm_jax.tokenizer.train import default_config, train_sentencepiece


def train_hf_bpe(texts: Sequence[str], vocab_size: int) -> HFTokenizer:
  """Llama 3 style byte-level BPE (regex split, byte-level alphabet) with our special tokens."""
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.Sequence([
      pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
      pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
  tok.train_from_iterator(texts, trainer)
  return HFTokenizer(tok, SPECIAL_TOKENS[0], None)


def _measure(tokenizer: OurTokenizer, texts: Sequence[str], train_s: float, train_bytes: int) -> dict:
  heldout_bytes = sum(len(t.encode()) for t in texts)
  start = time.perf_counter()
  ids = [tokenizer.encode(t) for t in texts]
  encode_s = time.perf_counter() - start
  num_tokens = sum(len(x) for x in ids)
  return {"vocab_size": tokenizer.vocab_size, "train_s": train_s,
          "train_mb_per_s": train_bytes / 1e6 / max(train_s, 1e-9),
          "bytes_per_token": heldout_bytes / max(num_tokens, 1), "heldout_tokens": num_tokens,
          "encode_mb_per_s": heldout_bytes / 1e6 / max(encode_s, 1e-9),
          "round_trip_ok": all(tokenizer.decode(x) == t for x, t in zip(ids, texts))}


def compare_tokenizers(texts_train: Sequence[str], texts_heldout: Sequence[str], vocab_size: int) -> dict:
  """Train both tokenizers to `vocab_size` on `texts_train`; measure them on `texts_heldout`.
  Returns {"ours": {...}, "hf": {...}, "train_bytes", "heldout_bytes", "bytes_per_token_ratio"}
  (ours / hf: above 1 means ours compresses better)."""
  texts_train, texts_heldout = list(texts_train), list(texts_heldout)
  train_bytes = sum(len(t.encode()) for t in texts_train)
  cfg = default_config()
  cfg.vocab_size = vocab_size
  cfg.max_train_bytes = train_bytes + 1
  start = time.perf_counter()
  ours = train_sentencepiece(cfg, texts_train)
  ours_s = time.perf_counter() - start
  start = time.perf_counter()
  hf = train_hf_bpe(texts_train, vocab_size)
  hf_s = time.perf_counter() - start
  result = {"ours": _measure(ours, texts_heldout, ours_s, train_bytes),
            "hf": _measure(hf, texts_heldout, hf_s, train_bytes),
            "train_bytes": train_bytes, "heldout_bytes": sum(len(t.encode()) for t in texts_heldout)}
  result["bytes_per_token_ratio"] = result["ours"]["bytes_per_token"] / result["hf"]["bytes_per_token"]
  return result
