"""A tiktoken rank file (Llama 3's `tokenizer.model`: base64 token and rank per line) behind our
Tokenizer interface.

Special tokens follow the rank file: those listed in `tiktoken_config.json` (written by `save`), or
else Llama 3's 256 (<|begin_of_text|>, <|end_of_text|>, ..., <|eot_id|>, reserved ones) numbered
right after the ranks. `encode` treats special-token text as ordinary text; lone surrogates become
U+FFFD (tiktoken's rule).
"""

import base64
import json
import os

import numpy as np
import tiktoken
from tiktoken import load as tiktoken_load

from llm_jax.tokenizer.base import Tokenizer

CONFIG_FILE = "tiktoken_config.json"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_NUM_SPECIAL = 256


def llama3_special_tokens() -> list[str]:
  """Llama 3.1's special tokens in id order (they follow the 128000 ranks)."""
  named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
           "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
           "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
  return named + [f"<|reserved_special_token_{2 + i}|>" for i in range(LLAMA3_NUM_SPECIAL - len(named))]


def read_ranks(path: str) -> dict[bytes, int]:
  """Parse a rank file (tiktoken's own loader caches by path in /tmp, which goes stale in tests)."""
  ranks = {}
  for line in tiktoken_load.read_file(path).splitlines():
    if line:
      token, rank = line.split()
      ranks[base64.b64decode(token)] = int(rank)
  return ranks


class TiktokenTokenizer(Tokenizer):
  """`ranks` (bytes -> id), split `pattern`, `special_tokens` (str -> id), boundary token names."""

  def __init__(self, ranks: dict[bytes, int], pattern: str = LLAMA3_PATTERN,
               special_tokens: dict[str, int] | None = None, bos_token: str | None = "<|begin_of_text|>",
               eos_token: str | None = "<|end_of_text|>", name: str = "tiktoken"):
    if special_tokens is None:
      special_tokens = {t: len(ranks) + i for i, t in enumerate(llama3_special_tokens())}
    self._ranks, self._pattern, self._special = ranks, pattern, dict(special_tokens)
    self.bos_token, self.eos_token, self.name = bos_token, eos_token, name
    self._enc = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=self._special)
    lengths = np.zeros(self.vocab_size, np.int32)
    for token, rank in ranks.items():
      lengths[rank] = len(token)
    self._lengths = lengths

  def __getstate__(self):
    return {"ranks": self._ranks, "pattern": self._pattern, "special": self._special,
            "bos": self.bos_token, "eos": self.eos_token, "name": self.name}

  def __setstate__(self, s):
    self.__init__(s["ranks"], s["pattern"], s["special"], s["bos"], s["eos"], s["name"])

  @classmethod
  def load(cls, directory: str, filename: str = "tokenizer.model") -> "TiktokenTokenizer":
    ranks = read_ranks(os.path.join(directory, filename))
    config_path = os.path.join(directory, CONFIG_FILE)
    if not os.path.exists(config_path):
      return cls(ranks, name=filename)  # Llama 3 layout
    with open(config_path) as f:
      c = json.load(f)
    return cls(ranks, c["pattern"], c["special_tokens"], c.get("bos_token"), c.get("eos_token"), filename)

  def save(self, directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "tokenizer.model"), "wb") as f:
      for token, rank in sorted(self._ranks.items(), key=lambda kv: kv[1]):
        f.write(base64.b64encode(token) + b" %d\n" % rank)
    with open(os.path.join(directory, CONFIG_FILE), "w") as f:
      json.dump({"pattern": self._pattern, "special_tokens": self._special, "bos_token": self.bos_token,
                 "eos_token": self.eos_token}, f, indent=1)

  @property
  def vocab_size(self) -> int:
    return self._enc.n_vocab

  def encode(self, text: str) -> list[int]:
    return self._enc.encode_ordinary(text)

  def encode_batch(self, texts: list[str]) -> list[list[int]]:
    return self._enc.encode_ordinary_batch(texts, num_threads=1)

  def decode(self, ids, errors: str = "replace") -> str:
    return self._enc.decode_bytes(np.asarray(ids).reshape(-1).tolist()).decode("utf-8", errors=errors)

  def special_id(self, token: str) -> int:
    if token not in self._special:
      raise KeyError(f"tokenizer has no special token {token!r}")
    return self._special[token]

  @property
  def bos_id(self) -> int:
    if self.bos_token is None:
      raise KeyError("this tokenizer has no BOS token; pass bos_token")
    return self.special_id(self.bos_token)

  @property
  def eos_id(self) -> int | None:
    return None if self.eos_token is None else self.special_id(self.eos_token)

  def token_byte_lengths(self) -> np.ndarray:
    return self._lengths.copy()
