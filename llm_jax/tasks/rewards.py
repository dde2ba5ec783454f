"""Rewards for RL: a task's correctness, a format reward, and a weighted sum of several.

A spec lists terms as name@weight, comma-separated, e.g. "correct@1,format@0.1":
  correct  the task's own reward: its checker applied to the extracted final answer (0 or 1)
  format   1 when the reply ends with a non-empty `#### <answer>` line, else 0
  steps    the share of the reference's worked equations ("3 + 4 = 7") that the reply writes too: a
           denser, process-level signal than the final answer (a reply right until its last step
           earns most of it), and one that true but irrelevant equations cannot game
The total is the weighted sum; each term is also returned, for metrics.
"""

import re
from collections.abc import Callable

from llm_jax.tasks.base import Example, Task, extract_marked

_EQUATION_RE = re.compile(r"(-?\d+)\s*([-+*/x])\s*(-?\d+)\s*=\s*(-?\d+)")

RewardFn = Callable[[str, Example], float]


def format_reward(completion: str, example: Example) -> float:
  """1.0 when the last non-empty line is a non-empty `#### answer` line."""
  del example
  lines = [line for line in completion.strip().splitlines() if line.strip()]
  return float(bool(lines) and lines[-1].lstrip().startswith("####") and bool(extract_marked(lines[-1])))


def equations(text: str) -> set[tuple[str, ...]]:
  """The `a op b = c` equations written in `text`, as (a, op, b, c) strings."""
  return set(_EQUATION_RE.findall(text))


def steps_reward(completion: str, example: Example) -> float:
  """Share of the reference's equations that appear in the completion; 0 if the reference has none."""
  wanted = equations(example.reference or "")
  return len(wanted & equations(completion)) / len(wanted) if wanted else 0.0


def parse_spec(spec: str) -> list[tuple[str, float]]:
  """'correct@1,format@0.1' -> [('correct', 1.0), ('format', 0.1)]; a bare name weighs 1."""
  terms = []
  for part in (p.strip() for p in spec.split(",") if p.strip()):
    name, _, weight = part.partition("@")
    try:
      terms.append((name.strip(), float(weight) if weight else 1.0))
    except ValueError:
      raise ValueError(f"bad weight in reward term {part!r}; write name@0.5") from None
  if not terms:
    raise ValueError("the reward spec is empty; use e.g. correct@1,format@0.1")
  return terms


def make_reward(spec: str, task: Task) -> Callable[[str, Example], tuple[float, dict[str, float]]]:
  """reward(completion, example) -> (weighted total, {term: value}) for the terms of `spec`."""
  known: dict[str, RewardFn] = {"correct": task.reward, "format": format_reward, "steps": steps_reward}
  terms = parse_spec(spec)
  unknown = [n for n, _ in terms if n not in known]
  if unknown:
    raise ValueError(f"unknown reward term(s) {unknown}; choose from {', '.join(known)}")

  def reward(completion: str, example: Example) -> tuple[float, dict[str, float]]:
    parts = {name: float(known[name](completion, example)) for name, _ in terms}
    return sum(w * parts[name] for name, w in terms), parts

  return reward
