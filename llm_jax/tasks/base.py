"""The Task interface shared by SFT data, evaluation and RL: seeded examples, held-out split, reward.

A task samples examples from a seeded generator. Each example has a `key` (e.g. the question, or the
word being spelled); a hash of the key puts it in "train" or "test", so the two splits never share a
key whatever the seed, and the same seed always gives the same examples in the same order.
"""

import abc
import dataclasses
import hashlib
import re

import numpy as np

SPLITS = ("train", "test")
_MARKED_RE = re.compile(r"####[ \t]*([^\n]*)")
_NUMBER_RE = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")


@dataclasses.dataclass(frozen=True)
class Example:
  """One task instance: the prompt (a conversation ending with the user), the reference reply the
  assistant is trained on, and the checkable answer."""
  prompt: tuple[dict, ...]
  reference: str
  answer: str
  key: str
  meta: dict = dataclasses.field(default_factory=dict)

  @property
  def conversation(self) -> list[dict]:
    """The prompt followed by the reference reply: an SFT conversation."""
    return list(self.prompt) + [{"role": "assistant", "content": self.reference}]


def extract_marked(text: str) -> str | None:
  """The text after the first GSM8K-style `#### ` marker, up to the end of its line (None: no marker)."""
  m = _MARKED_RE.search(text)
  return m.group(1).strip() if m else None


def extract_number(text: str) -> str | None:
  """The number after the first `####` in canonical form ('1,200' -> '1200', '7.0' -> '7'), or None."""
  marked = extract_marked(text)
  m = _NUMBER_RE.search(marked) if marked is not None else None
  if m is None:
    return None
  value = m.group(0).replace(",", "")
  try:
    number = float(value)
  except ValueError:
    return None
  return str(int(number)) if number == int(number) else repr(number)


def unit_hash(key: str) -> float:
  """A deterministic number in [0, 1) for `key` (the same on every machine and run)."""
  return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64


def split_of(key: str, test_fraction: float) -> str:
  """'test' for a deterministic `test_fraction` share of keys, else 'train'."""
  return "test" if unit_hash(key) < test_fraction else "train"


class Task(abc.ABC):
  """Seeded examples with a held-out split and a 0/1 reward. Subclasses implement `sample`."""

  name = "task"

  def __init__(self, seed: int = 0, test_fraction: float = 0.2):
    if not 0 < test_fraction < 1:
      raise ValueError(f"test_fraction={test_fraction} must be in (0, 1)")
    self.seed, self.test_fraction = seed, test_fraction

  @abc.abstractmethod
  def sample(self, rng: np.random.Generator) -> Example:
    """One random example (of either split)."""

  def examples(self, split: str, n: int) -> list[Example]:
    """The first `n` examples of `split` for this task's seed (always the same ones)."""
    if split not in SPLITS:
      raise ValueError(f"split {split!r} is not one of {SPLITS}")
    rng = np.random.default_rng([self.seed, SPLITS.index(split), sum(map(ord, self.name))])
    out, tries = [], 0
    while len(out) < n:
      ex = self.sample(rng)
      tries += 1
      if split_of(f"{self.name}:{ex.key}", self.test_fraction) == split:
        out.append(ex)
      elif tries > 100 * (n + 10):
        raise RuntimeError(f"task {self.name!r} found only {len(out)} of {n} {split} examples; "
                           "widen its generator or change test_fraction")
    return out

  def conversations(self, split: str, n: int) -> list[list[dict]]:
    return [ex.conversation for ex in self.examples(split, n)]

  def reward(self, completion: str, example: Example) -> float:
    """1.0 when the completion's `####` answer equals the example's, else 0.0."""
    return float(extract_marked(completion) == example.answer)
