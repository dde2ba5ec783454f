"""A Hugging Face `tokenizer.json` (GPT-2 byte-level BPE, Llama 3, sentencepiece-style) behind our
Tokenizer interface, through the `tokenizers` library.

`encode` never adds BOS/EOS and never turns special-token text in the input into special ids
(`encode_special_tokens=True`); `decode` keeps special tokens. BOS/EOS come from
`tokenizer_config.json` when present, else from well-known names; without a BOS (GPT-2) the EOS
token <|endoftext|> doubles as the document boundary.
"""

import json
import os

import numpy as np
import tokenizers

from llm_jax.tokenizer.base import Tokenizer

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
_KNOWN_BOS = ("<|begin_of_text|>", "<s>", "<bos>")
_KNOWN_EOS = ("<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>")


def _token_name(value) -> str | None:
  """tokenizer_config.json stores a token as a string or as {"content": ...}."""
  return value.get("content") if isinstance(value, dict) else value


class HFTokenizer(Tokenizer):
  """Wraps `tokenizers.Tokenizer`; `bos_token`/`eos_token` name its boundary tokens (None: absent)."""

  def __init__(self, tokenizer: tokenizers.Tokenizer, bos_token: str | None = None,
               eos_token: str | None = None):
    self._tok = tokenizer
    self._tok.encode_special_tokens = True
    self._special = {t.content: i for i, t in tokenizer.get_added_tokens_decoder().items()}
    self.bos_token, self.eos_token = bos_token, eos_token
    byte_level = "ByteLevel" in json.dumps(json.loads(tokenizer.to_str()).get("decoder"))
    n = self.vocab_size
    lengths = np.zeros(n, np.int32)
    for piece, i in tokenizer.get_vocab(with_added_tokens=False).items():
      if byte_level:
        lengths[i] = len(piece)  # one alphabet character per byte
      elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        lengths[i] = 1  # sentencepiece-style byte fallback
      else:
        lengths[i] = len(piece.replace("\u2581", " ").encode())
    for i in self._special.values():
      lengths[i] = 0
    self._lengths = lengths

  # Pickling (multiprocessing workers) rebuilds through __init__ so encode settings survive.
  def __getstate__(self):
    return {"json": self._tok.to_str(), "bos": self.bos_token, "eos": self.eos_token}

  def __setstate__(self, state):
    self.__init__(tokenizers.Tokenizer.from_str(state["json"]), state["bos"], state["eos"])

  @classmethod
  def load(cls, directory: str) -> "HFTokenizer":
    tok = tokenizers.Tokenizer.from_file(os.path.join(directory, TOKENIZER_FILE))
    added = {t.content for t in tok.get_added_tokens_decoder().values()}
    config = {}
    if os.path.exists(os.path.join(directory, CONFIG_FILE)):
      with open(os.path.join(directory, CONFIG_FILE)) as f:
        config = json.load(f)
    bos = _token_name(config.get("bos_token")) or next((t for t in _KNOWN_BOS if t in added), None)
    eos = _token_name(config.get("eos_token")) or next((t for t in _KNOWN_EOS if t in added), None)
    return cls(tok, bos or eos, eos)  # GPT-2 style: <|endoftext|> is also the document boundary

  def save(self, directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    self._tok.save(os.path.join(directory, TOKENIZER_FILE))
    with open(os.path.join(directory, CONFIG_FILE), "w") as f:
      json.dump({"bos_token": self.bos_token, "eos_token": self.eos_token}, f, indent=1)

  @property
  def vocab_size(self) -> int:
    return self._tok.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str) -> list[int]:
    return self._tok.encode(text, add_special_tokens=False).ids

  def encode_batch(self, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]

  def decode(self, ids) -> str:
    return self._tok.decode(np.asarray(ids).reshape(-1).tolist(), skip_special_tokens=False)

  def special_id(self, token: str) -> int:
    if token not in self._special:
      raise KeyError(f"tokenizer has no special token {token!r}")
    return self._special[token]

  @property
  def bos_id(self) -> int:
    if self.bos_token is None:
      raise KeyError("this tokenizer has no BOS token; set bos_token in tokenizer_config.json")
    return self.special_id(self.bos_token)

  @property
  def eos_id(self) -> int | None:
    return None if self.eos_token is None else self.special_id(self.eos_token)

  def token_byte_lengths(self) -> np.ndarray:
    return self._lengths.copy()
