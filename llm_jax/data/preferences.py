"""Preference data: rankings of K replies to one prompt (best first) and chosen/rejected pairs.

JSONL formats (one object per line; `prompt` is a list of OpenAI-style messages ending with the user's,
or a plain string for a one-turn prompt):
  ranking  {"prompt": [...], "completions": ["best", ..., "worst"], "scores": [...]?, "answer": "..."?}
  pair     {"prompt": [...], "chosen": "...", "rejected": "..."}
`read_jsonl` accepts both (a pair is a ranking of two); `scores` (e.g. gold scores) and `answer` (a
task's checkable answer) are optional and kept for analysis. Hugging Face loaders: preference_hf.py.
"""

import collections
import dataclasses
import glob
import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator

from llm_jax.tasks.base import split_of


@dataclasses.dataclass(frozen=True)
class Ranking:
  """Replies to `prompt` ordered best to worst (K >= 2)."""
  prompt: tuple[dict, ...]
  completions: tuple[str, ...]
  scores: tuple[float, ...] | None = None
  answer: str | None = None

  def key(self) -> str:
    """A stable id of the prompt (train/test split by hash, cache keys)."""
    return json.dumps(list(self.prompt), sort_keys=True, ensure_ascii=False)


@dataclasses.dataclass(frozen=True)
class Pair:
  prompt: tuple[dict, ...]
  chosen: str
  rejected: str


def as_prompt(prompt) -> tuple[dict, ...]:
  """A message list (or a plain string: one user turn) as a tuple of messages ending with the user's."""
  if isinstance(prompt, str):
    return ({"role": "user", "content": prompt},)
  if not isinstance(prompt, (list, tuple)) or not prompt or prompt[-1].get("role") != "user":
    raise ValueError(f"a preference prompt must be a string or messages ending with the user's: {str(prompt)[:80]}")
  return tuple(dict(m) for m in prompt)


def pairs_of(ranking: Ranking) -> list[Pair]:
  """All K-choose-2 (better, worse) pairs of a ranking."""
  return [Pair(ranking.prompt, ranking.completions[i], ranking.completions[j])
          for i, j in itertools.combinations(range(len(ranking.completions)), 2)]


def ranking_of(pair: Pair) -> Ranking:
  return Ranking(pair.prompt, (pair.chosen, pair.rejected))


def from_record(record: dict) -> Ranking:
  """A JSONL object of either format -> Ranking; ValueError naming what is wrong."""
  if not isinstance(record, dict) or "prompt" not in record:
    raise ValueError("a preference record needs a 'prompt'")
  prompt = as_prompt(record["prompt"])
  if "completions" in record:
    completions = tuple(record["completions"])
  elif "chosen" in record and "rejected" in record:
    completions = (record["chosen"], record["rejected"])
  else:
    raise ValueError("a preference record needs 'completions' (a ranking) or 'chosen' and 'rejected' (a pair)")
  if len(completions) < 2 or not all(isinstance(c, str) for c in completions):
    raise ValueError("a ranking needs at least two string completions")
  scores = record.get("scores")
  if scores is not None and len(scores) != len(completions):
    raise ValueError(f"'scores' has {len(scores)} entries for {len(completions)} completions")
  return Ranking(prompt, completions, tuple(map(float, scores)) if scores is not None else None,
                 record.get("answer"))


def to_record(item: Ranking | Pair) -> dict:
  if isinstance(item, Pair):
    return {"prompt": list(item.prompt), "chosen": item.chosen, "rejected": item.rejected}
  record = {"prompt": list(item.prompt), "completions": list(item.completions)}
  if item.scores is not None:
    record["scores"] = list(item.scores)
  if item.answer is not None:
    record["answer"] = item.answer
  return record


def write_jsonl(path: str, items: Iterable[Ranking | Pair]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    for item in items:
      f.write(json.dumps(to_record(item), ensure_ascii=False) + "\n")
  os.replace(tmp, path)


def read_jsonl(pattern: str, skipped: collections.Counter | None = None) -> list[Ranking]:
  """Rankings from the JSONL files matching `pattern` (file, glob or folder of *.jsonl); bad lines are
  counted in `skipped` (by reason) when given, else fail naming the file and line."""
  paths = sorted(glob.glob(os.path.join(pattern, "*.jsonl")) if os.path.isdir(pattern) else glob.glob(pattern))
  if not paths:
    raise FileNotFoundError(f"no preference JSONL files match {pattern!r}")
  out = []
  for path in paths:
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, start=1):
        if not line.strip():
          continue
        try:
          out.append(from_record(json.loads(line)))
        except (ValueError, AttributeError, TypeError) as e:
          if skipped is None:
            raise ValueError(f"{path}:{number}: {e}") from None
          skipped["bad_json" if isinstance(e, json.JSONDecodeError) else "bad_record"] += 1
  return out


def split(rankings: Iterable[Ranking], which: str, test_fraction: float) -> list[Ranking]:
  """The rankings whose prompt hashes into `which` ("train" or "test"); a prompt never lands in both."""
  return [r for r in rankings if split_of(r.key(), test_fraction) == which]


def data_hash(rankings: Iterable[Ranking]) -> str:
  """A short content hash (cache keys, e.g. DPO's reference log-probabilities)."""
  h = hashlib.sha256()
  for r in rankings:
    h.update(json.dumps(to_record(r), sort_keys=True, ensure_ascii=False).encode())
  return h.hexdigest()[:16]


def iter_pairs(rankings: Iterable[Ranking]) -> Iterator[Pair]:
  for r in rankings:
    yield from pairs_of(r)
