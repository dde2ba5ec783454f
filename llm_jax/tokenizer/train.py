"""The tokenizer stage: train (or load) the project's tokenizer into `out_dir`."""

import io
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator

import ml_collections
import sentencepiece as spm

from llm_jax.tokenizer import bpe
from llm_jax.tokenizer.base import Tokenizer
from llm_jax.tokenizer.bytes import ByteTokenizer
from llm_jax.tokenizer.special import SPECIAL_TOKENS

# Ids every trained model reserves before learned pieces: specials, <unk>, 256 byte pieces.
NUM_RESERVED = len(SPECIAL_TOKENS) + 1 + 256
_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def default_config() -> ml_collections.ConfigDict:
  """Tokenizer stage config; every key is documented where it is set."""
  cfg = ml_collections.ConfigDict()
  cfg.kind = "bpe"  # 'bpe': byte-fallback BPE trained with sentencepiece; 'bytes': 256 bytes + specials.
  cfg.vocab_size = 32768  # total ids: specials + <unk> + 256 byte pieces + learned pieces ('bpe' only).
  cfg.split_digits = True  # every digit its own token (better arithmetic, slightly more tokens).
  cfg.max_train_bytes = 64_000_000  # cap on UTF-8 bytes of text fed to training (the rest is ignored).
  cfg.max_sentence_length = 16384  # bytes per training "sentence"; texts are cut at newlines to fit.
  cfg.character_coverage = 0.9999  # share of characters that get their own piece; rarer ones use bytes.
  cfg.num_threads = 0  # sentencepiece training threads; 0 means os.cpu_count().
  return cfg


def _training_chunks(texts: Iterable[str], max_chars: int, max_bytes: int) -> Iterator[str]:
  """Texts cut into chunks of <= max_chars characters (at newlines when possible), until max_bytes."""
  seen = 0
  for text in texts:
    # '▁' reads as a space inside sentencepiece and surrogates cannot cross into C++.
    text = _SURROGATE_RE.sub("\ufffd", text.replace(bpe.SPACE_PIECE, " "))
    chunk = ""
    for line in _LINE_RE.findall(text):
      while len(line) > max_chars:  # an overlong line is cut hard
        if chunk:
          yield chunk
          chunk = ""
        head, line = line[:max_chars], line[max_chars:]
        seen += len(head.encode())
        yield head
        if seen >= max_bytes:
          return
      if chunk and len(chunk) + len(line) > max_chars:
        yield chunk
        chunk = ""
      chunk += line
      seen += len(line.encode())
      if seen >= max_bytes:
        break
    if chunk:
      yield chunk
    if seen >= max_bytes:
      return


def train_sentencepiece(cfg: ml_collections.ConfigDict, texts: Iterable[str]) -> bpe.SentencePieceTokenizer:
  """Train the byte-fallback BPE model in memory (quietly) and wrap it."""
  if cfg.vocab_size <= NUM_RESERVED:
    raise ValueError(f"tokenizer.vocab_size={cfg.vocab_size} is too small: it must exceed the "
                     f"{NUM_RESERVED} reserved ids (specials, <unk>, 256 bytes); try >= 512")
  chunks = _training_chunks(texts, max(1, cfg.max_sentence_length // 4), cfg.max_train_bytes)
  model = io.BytesIO()
  with open(os.devnull, "w") as devnull:
    try:
      spm.SentencePieceTrainer.train(
          sentence_iterator=chunks, model_writer=model, logstream=devnull, minloglevel=2,
          model_type="bpe", vocab_size=cfg.vocab_size, byte_fallback=True,
          control_symbols=list(SPECIAL_TOKENS), unk_id=len(SPECIAL_TOKENS),
          bos_id=-1, eos_id=-1, pad_id=-1,
          normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False,
          allow_whitespace_only_pieces=True, split_digits=cfg.split_digits,
          character_coverage=cfg.character_coverage, max_sentence_length=cfg.max_sentence_length,
          input_sentence_size=0, shuffle_input_sentence=False, hard_vocab_limit=False,
          num_threads=cfg.num_threads or os.cpu_count() or 1)
    except RuntimeError as e:
      raise RuntimeError(f"sentencepiece training failed ({e}); raise "
                         "tokenizer.vocab_size, lower character_coverage, or feed more text") from e
  return bpe.SentencePieceTokenizer(model.getvalue())


def train_tokenizer(cfg: ml_collections.ConfigDict, texts: Iterable[str], out_dir: str) -> Tokenizer:
  """Train the tokenizer `cfg` describes on `texts` and save it to `out_dir`; if `out_dir` already
  holds a tokenizer, load and return it instead (the stage is skipped). Writes atomically."""
  from llm_jax.tokenizer import load_tokenizer  # pylint: disable=g-import-not-at-top
  out_dir = os.path.abspath(out_dir)
  if os.path.isdir(out_dir):
    try:
      tokenizer = load_tokenizer(out_dir)
      if cfg.kind == "bpe" and tokenizer.vocab_size != cfg.vocab_size:
        logging.warning("reusing the tokenizer in %s with vocab_size %d (config asks %d); delete it to "
                        "retrain", out_dir, tokenizer.vocab_size, cfg.vocab_size)
      return tokenizer
    except FileNotFoundError:
      if os.listdir(out_dir):
        raise FileExistsError(f"{out_dir!r} exists but holds no tokenizer; remove it or pick another "
                              "directory") from None
      os.rmdir(out_dir)
  if cfg.kind == "bytes":
    tokenizer = ByteTokenizer()
  elif cfg.kind == "bpe":
    tokenizer = train_sentencepiece(cfg, texts)
  else:
    raise ValueError(f"tokenizer.kind={cfg.kind!r} is unknown; use 'bpe' or 'bytes'")
  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".tmp-tokenizer-", dir=parent)
  try:
    tokenizer.save(tmp)
    os.rename(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return tokenizer
