"""GSM8K (Cobbe et al., 2021) grade-school word problems from the Hugging Face hub (`openai/gsm8k`).

The reference reply is the dataset's worked solution without its calculator annotations (`<<4*2=8>>`),
ending in `#### <answer>` like our Arithmetic task, so the same reward and evaluation apply. `datasets`
is imported only when examples are first asked for; offline it fails in one line.
"""

import re

import numpy as np

from llm_jax.tasks.base import SPLITS, Example, Task, extract_number

DATASET = ("openai/gsm8k", "main")
_CALC_RE = re.compile(r"<<[^>]*>>")


def load_rows(split: str) -> list[dict]:
  """The {question, answer} rows of GSM8K's `split` (train: 7473, test: 1319)."""
  try:
    import datasets  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise FileNotFoundError("task gsm8k needs the `datasets` package (pip install datasets) and network "
                            "access to the Hugging Face hub; offline, use task arithmetic") from None
  try:
    return list(datasets.load_dataset(*DATASET, split=split))
  except Exception as e:  # pylint: disable=broad-except  (offline, renamed, ...)
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise FileNotFoundError(f"task gsm8k could not load {DATASET[0]} (offline?): {reason}") from None


def to_example(row: dict) -> Example:
  """A dataset row as an Example: prompt, annotation-free worked solution, canonical answer."""
  solution = _CALC_RE.sub("", row["answer"]).strip()
  answer = extract_number(solution)
  if answer is None:
    raise ValueError(f"gsm8k row has no '#### answer': {row['answer'][-80:]!r}")
  return Example(prompt=({"role": "user", "content": row["question"].strip()},), reference=solution,
                 answer=answer, key=row["question"].strip())


class GSM8K(Task):
  """GSM8K's own train/test splits (test_fraction is unused), shuffled by the seed."""

  name = "gsm8k"

  def __init__(self, seed: int = 0, test_fraction: float = 0.2, loader=load_rows):
    super().__init__(seed, test_fraction)
    self._loader, self._cache = loader, {}

  def _split(self, split: str) -> list[Example]:
    if split not in SPLITS:
      raise ValueError(f"split {split!r} is not one of {SPLITS}")
    if split not in self._cache:
      rows = [to_example(r) for r in self._loader(split)]
      order = np.random.default_rng([self.seed, SPLITS.index(split)]).permutation(len(rows))
      self._cache[split] = [rows[i] for i in order]
    return self._cache[split]

  def sample(self, rng: np.random.Generator) -> Example:
    rows = self._split("train")
    return rows[int(rng.integers(len(rows)))]

  def examples(self, split: str, n: int) -> list[Example]:
    """The first `n` of the shuffled split, cycling when n exceeds its size."""
    rows = self._split(split)
    return [rows[i % len(rows)] for i in range(n)]

  def reward(self, completion: str, example: Example) -> float:
    return float(extract_number(completion) == example.answer)
