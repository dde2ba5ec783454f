"""Byte-fallback BPE tokenizer backed by a sentencepiece model (trained by `tokenizer/train.py`).

Id layout of models trained here (fixed before training starts):
  0 .. 20    SPECIAL_TOKENS in their tuple order (sentencepiece *control* symbols, so `encode` never
             produces them from text: a literal "<|bos|>" in the input is ordinary text)
  21         <unk> (never produced: every byte has a fallback piece)
  22 .. 277  byte pieces <0x00> .. <0xFF>
  278 ..     learned merges and characters, '▁' standing for one space byte
With more or fewer special tokens everything after them shifts; ask `special_id`, never hard-code.
A foreign model (no <|bos|>, e.g. Llama 2's tokenizer.model) keeps sentencepiece's own semantics:
its bos/eos ids, its normalisation and dummy prefix, `sp.decode`.

Text contract:
  * `decode(encode(s)) == s` for every str `s` without lone surrogates (identity normalisation, no
    dummy prefix, whitespace kept). A literal '▁' (U+2581) in the input is encoded as its 3 UTF-8
    bytes through byte pieces, so it never turns into a space.
  * Lone surrogates U+DC80..U+DCFF (what `bytes.decode("utf-8", "surrogateescape")` makes of
    invalid UTF-8) encode as the raw byte they escape, so the ids hold the original bytes exactly;
    `decode(ids, errors="surrogateescape")` gives the original str back, and the default
    `errors="replace"` gives printable text with U+FFFD. Any other lone surrogate encodes as U+FFFD.
"""

import json
import os
import re
from collections.abc import Sequence

import numpy as np
import sentencepiece as spm

from llm_jax.tokenizer.base import Tokenizer
from llm_jax.tokenizer.special import BOS

CONFIG_FILE = "sentencepiece_tokenizer.json"
MODEL_FILE = "tokenizer.model"
SPACE_PIECE = "\u2581"  # sentencepiece's stand-in for ' '
# Characters the sentencepiece C++ side cannot take as they are: '▁' (would read as a space) and
# lone surrogates (not encodable as UTF-8).
_AWKWARD_RE = re.compile("([\u2581\ud800-\udfff]+)")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = "\ufffd".encode()


def _awkward_char_bytes(ch: str) -> bytes:
  """Bytes that stand for one '▁' or lone-surrogate character (see the module docstring)."""
  if ch == SPACE_PIECE:
    return ch.encode()
  if "\udc80" <= ch <= "\udcff":
    return bytes([ord(ch) - 0xDC00])
  return _REPLACEMENT


class SentencePieceTokenizer(Tokenizer):
  """A sentencepiece model with exact round trips; see the module docstring for the contract."""

  def __init__(self, model_proto: bytes):
    self._proto = bytes(model_proto)
    self._sp = spm.SentencePieceProcessor(model_proto=self._proto)
    sp = self._sp
    n = sp.get_piece_size()
    self._special = {sp.id_to_piece(i): i for i in range(n) if sp.is_control(i)}
    self._foreign = BOS not in self._special  # e.g. Llama 2's model: decode the sentencepiece way
    self._byte_ids = [sp.piece_to_id(f"<0x{b:02X}>") for b in range(256)]
    pieces, lengths = [], np.zeros(n, np.int32)
    for i in range(n):
      piece = sp.id_to_piece(i)
      if sp.is_byte(i):
        b = bytes([int(piece[3:5], 16)])
      elif sp.is_control(i):
        b = piece.encode()  # decodes as its token string but stands for no input bytes
      elif sp.is_unknown(i):
        b = _REPLACEMENT
      else:
        b = piece.replace(SPACE_PIECE, " ").encode()
      pieces.append(b)
      if not (sp.is_control(i) or sp.is_unknown(i)):
        lengths[i] = len(b)
    self._piece_bytes = pieces
    self._lengths = lengths

  # Pickling (multiprocessing workers) ships the serialized model, not the C++ object.
  def __getstate__(self):
    return {"model_proto": self._proto}

  def __setstate__(self, state):
    self.__init__(state["model_proto"])

  @classmethod
  def load(cls, directory: str) -> "SentencePieceTokenizer":
    with open(os.path.join(directory, MODEL_FILE), "rb") as f:
      return cls(f.read())

  def save(self, directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, MODEL_FILE), "wb") as f:
      f.write(self._proto)
    with open(os.path.join(directory, CONFIG_FILE), "w") as f:
      json.dump({"type": "sentencepiece", "model_file": MODEL_FILE,
                 "vocab_size": self.vocab_size, "special_tokens": list(self._special)}, f, indent=1)

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()

  @property
  def model_proto(self) -> bytes:
    return self._proto

  def encode(self, text: str) -> list[int]:
    if self._foreign:  # sentencepiece's own semantics; lone surrogates become U+FFFD
      return self._sp.encode(_SURROGATE_RE.sub("\ufffd", text))
    if SPACE_PIECE not in text:
      try:
        return self._sp.encode(text)
      except (UnicodeEncodeError, RuntimeError):  # lone surrogates: take the careful path below
        pass
    ids = []
    for k, part in enumerate(_AWKWARD_RE.split(text)):
      if k % 2 == 0:
        if part:
          ids.extend(self._sp.encode(part))
      else:
        ids.extend(self._byte_ids[b] for ch in part for b in _awkward_char_bytes(ch))
    return ids

  def decode(self, ids: Sequence[int] | np.ndarray, errors: str = "replace") -> str:
    """Text of `ids`; `errors` is the UTF-8 error handler ("surrogateescape" to invert encode
    exactly on surrogate-escaped input). Special ids render as their token strings."""
    ids = np.asarray(ids).reshape(-1).tolist() if not isinstance(ids, list) else ids
    if self._foreign:
      return self._sp.decode(ids)
    try:
      if ids and min(ids) < 0:
        raise IndexError
      data = b"".join([self._piece_bytes[i] for i in ids])
    except (IndexError, TypeError):
      raise ValueError(f"ids must be ints in [0, {self.vocab_size}); got {ids[:20]}...") from None
    return data.decode("utf-8", errors=errors)

  def special_id(self, token: str) -> int:
    if token not in self._special:
      raise KeyError(f"tokenizer has no special token {token!r}")
    return self._special[token]

  @property
  def bos_id(self) -> int:
    if not self._foreign or self._sp.bos_id() < 0:
      return self.special_id(BOS)
    return self._sp.bos_id()  # a foreign model's own (e.g. "<s>")

  @property
  def eos_id(self) -> int | None:
    if not self._foreign or self._sp.eos_id() < 0:
      return None
    return self._sp.eos_id()

  def token_byte_lengths(self) -> np.ndarray:
    return self._lengths.copy()

  def id_to_piece(self, i: int) -> str:
    return self._sp.id_to_piece(i)
