"""Tokenizers: the shared interface, trained BPE (sentencepiece), bytes, and imported tokenizers."""

import os
import re

from llm_jax.tokenizer.base import Tokenizer
from llm_jax.tokenizer.bytes import ByteTokenizer
from llm_jax.tokenizer.special import SPECIAL_TOKENS

_TIKTOKEN_LINE_RE = re.compile(rb"^[A-Za-z0-9+/=]+ [0-9]+\r?$")


def _is_tiktoken_file(path: str) -> bool:
  """True for a tiktoken rank file (base64 token, space, rank per line), not a sentencepiece proto."""
  with open(path, "rb") as f:
    first = f.readline(4096).rstrip(b"\n")
  return bool(_TIKTOKEN_LINE_RE.match(first))


def load_tokenizer(directory: str) -> Tokenizer:
  """Load whichever tokenizer `directory` holds: one written by `Tokenizer.save`, a Hugging Face
  `tokenizer.json`, a tiktoken rank file (`tokenizer.model` of Llama 3, `*.tiktoken`) or a
  sentencepiece `tokenizer.model`."""
  # pylint: disable=g-import-not-at-top
  from llm_jax.tokenizer import bytes as bytes_lib
  from llm_jax.tokenizer import bpe
  join = lambda name: os.path.join(directory, name)
  if os.path.exists(join(bytes_lib.CONFIG_FILE)):
    return ByteTokenizer.load(directory)
  if os.path.exists(join(bpe.CONFIG_FILE)):
    return bpe.SentencePieceTokenizer.load(directory)
  if os.path.exists(join("tokenizer.json")):
    from llm_jax.tokenizer.hf import HFTokenizer
    return HFTokenizer.load(directory)
  tiktoken_files = [n for n in sorted(os.listdir(directory)) if n.endswith(".tiktoken")] if (
      os.path.isdir(directory)) else []
  if os.path.exists(join(bpe.MODEL_FILE)) and _is_tiktoken_file(join(bpe.MODEL_FILE)):
    tiktoken_files = [bpe.MODEL_FILE]
  if tiktoken_files:
    from llm_jax.tokenizer.tiktoken_bpe import TiktokenTokenizer
    return TiktokenTokenizer.load(directory, tiktoken_files[0])
  if os.path.exists(join(bpe.MODEL_FILE)):
    return bpe.SentencePieceTokenizer.load(directory)
  raise FileNotFoundError(f"no tokenizer found in {directory!r}: expected a file written by Tokenizer.save, "
                          "a tokenizer.json, or a tokenizer.model")
