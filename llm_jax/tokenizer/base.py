"""The Tokenizer interface shared by every stage (trained BPE, bytes, imported GPT-2 / Llama tokenizers)."""

import abc

import numpy as np


class Tokenizer(abc.ABC):
  """Text <-> ids. `encode` never turns special-token text into special ids (model output and user
  text are data, not control); special ids come only from `special_id`."""

  @property
  @abc.abstractmethod
  def vocab_size(self) -> int:
    """Number of ids, special tokens included (the model's embedding rows must be >= this)."""

  @abc.abstractmethod
  def encode(self, text: str) -> list[int]:
    """Ids of `text`, no BOS/EOS added."""

  @abc.abstractmethod
  def decode(self, ids) -> str:
    """Text of `ids`; special ids render as their token strings."""

  @abc.abstractmethod
  def special_id(self, token: str) -> int:
    """Id of a special token such as "<|bos|>"; KeyError naming the token if this tokenizer lacks it."""

  @abc.abstractmethod
  def token_byte_lengths(self) -> np.ndarray:
    """int32[vocab_size]: UTF-8 bytes each id stands for (0 for special ids); used for bits per byte."""

  @abc.abstractmethod
  def save(self, directory: str) -> None:
    """Write everything `load_tokenizer(directory)` needs."""

  @property
  def bos_id(self) -> int:
    """Document-boundary id prepended to every document."""
    return self.special_id("<|bos|>")

  @property
  def eos_id(self) -> int | None:
    """End-of-text id for imported models that have one; our own tokenizers use BOS as the boundary."""
    return None

  def has_special(self, token: str) -> bool:
    try:
      self.special_id(token)
      return True
    except KeyError:
      return False

  def encode_batch(self, texts: list[str]) -> list[list[int]]:
    return [self.encode(t) for t in texts]
