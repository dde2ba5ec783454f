"""Byte-level tokenizer: ids 0..255 are bytes, then the special tokens. Needs no training."""

import json
import os

import numpy as np

from llm_jax.tokenizer.base import Tokenizer
from llm_jax.tokenizer.special import SPECIAL_TOKENS

CONFIG_FILE = "byte_tokenizer.json"


class ByteTokenizer(Tokenizer):
  """UTF-8 bytes as ids; round-trips any string, including invalid surrogates via `surrogateescape`."""

  def __init__(self, special_tokens=SPECIAL_TOKENS):
    self._special = {tok: 256 + i for i, tok in enumerate(special_tokens)}
    self._special_by_id = {i: tok for tok, i in self._special.items()}

  @property
  def vocab_size(self) -> int:
    return 256 + len(self._special)

  def encode(self, text: str) -> list[int]:
    return list(text.encode("utf-8", errors="surrogateescape"))

  def decode(self, ids) -> str:
    out, buf = [], bytearray()
    for i in ids:
      i = int(i)
      if i < 256:
        buf.append(i)
        continue
      out.append(buf.decode("utf-8", errors="replace"))
      buf = bytearray()
      out.append(self._special_by_id.get(i, ""))
    out.append(buf.decode("utf-8", errors="replace"))
    return "".join(out)

  def special_id(self, token: str) -> int:
    if token not in self._special:
      raise KeyError(f"tokenizer has no special token {token!r}")
    return self._special[token]

  def token_byte_lengths(self) -> np.ndarray:
    lengths = np.zeros(self.vocab_size, np.int32)
    lengths[:256] = 1
    return lengths

  def save(self, directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, CONFIG_FILE), "w") as f:
      json.dump({"type": "bytes", "special_tokens": list(self._special)}, f)

  @classmethod
  def load(cls, directory: str) -> "ByteTokenizer":
    with open(os.path.join(directory, CONFIG_FILE)) as f:
      return cls(tuple(json.load(f)["special_tokens"]))
