"""Multi-step arithmetic word problems with worked solutions ending in GSM8K's `#### <answer>`.

A problem follows one person's count of some item through 2-4 events (finds, gives away, buys packs,
doubles, halves; `events` picks which). The reference reply works it out one line per operation ("12 + 5 = 17"), then
`#### 17`. `answer_first=True` puts `#### 17` first and the working after it: the same tokens, but
the model must commit to the answer before it has "thought" (the tokens-to-think experiment).
`terse_fraction` of the references (chosen by a hash of the problem, so the problems themselves do not
change) are the bare `#### 17`, like human-written data that skips the working: SFT then teaches two ways
to answer, and RL may find out which one pays (DeepSeek-R1's replies grow longer as they improve; at
nano size they grow shorter instead, see BENCHMARKS.md).
"""

import numpy as np

from llm_jax.tasks.base import Example, Task, extract_number, unit_hash

EVENTS = ("add", "sub", "packs", "double", "half")

PEOPLE = (("Ava", "she", "her"), ("Ben", "he", "his"), ("Chloe", "she", "her"), ("Dan", "he", "his"),
          ("Ella", "she", "her"), ("Finn", "he", "his"), ("Grace", "she", "her"), ("Hugo", "he", "his"),
          ("Isla", "she", "her"), ("Jack", "he", "his"), ("Maya", "she", "her"), ("Omar", "he", "his"),
          ("Priya", "she", "her"), ("Sam", "he", "his"), ("Tara", "she", "her"), ("Leo", "he", "his"))
ITEMS = ("apples", "marbles", "stickers", "books", "pencils", "cookies", "shells", "coins", "cards",
         "stamps", "eggs", "balloons", "candles", "buttons", "plums", "rocks")
QUESTIONS = ("How many {item} does {name} have now?", "How many {item} does {name} end up with?",
             "How many {item} are left with {name} at the end?", "What is the number of {item} {name} has now?")


def extract_answer(text: str) -> str | None:
  """The canonical number after the first `####` (GSM8K's answer marker), or None."""
  return extract_number(text)


class Arithmetic(Task):
  """Word problems of `min_steps`..`max_steps` operations on numbers up to `max_value`, with events drawn
  from `events` (a comma-separated subset of EVENTS; "sub" and "half" only where the count allows)."""

  name = "arithmetic"

  def __init__(self, seed: int = 0, test_fraction: float = 0.2, min_steps: int = 2, max_steps: int = 4,
               max_value: int = 30, answer_first: bool = False, events: str = ",".join(EVENTS),
               terse_fraction: float = 0.0):
    super().__init__(seed, test_fraction)
    if not 1 <= min_steps <= max_steps:
      raise ValueError(f"need 1 <= min_steps={min_steps} <= max_steps={max_steps}")
    self.events = tuple(e.strip() for e in events.split(",") if e.strip())
    unknown = sorted(set(self.events) - set(EVENTS))
    if unknown or not set(self.events) & {"add", "packs", "double"}:
      raise ValueError(f"tasks.arithmetic.events={events!r}: use a subset of {','.join(EVENTS)} with at least one of "
                       "add, packs, double (the others need a count they can shrink)")
    self.min_steps, self.max_steps, self.max_value = min_steps, max_steps, max_value
    if not 0 <= terse_fraction <= 1:
      raise ValueError(f"tasks.arithmetic.terse_fraction={terse_fraction} must be in [0, 1]")
    self.answer_first, self.terse_fraction = answer_first, terse_fraction

  def _step(self, rng, value: int, he: str, his: str, item: str) -> tuple[str, list[str], int]:
    """One event: (sentence of the problem, solution lines, new value)."""
    shrink = ["sub", "sub"] * (value > 1 and "sub" in self.events)
    shrink += ["half"] * (value % 2 == 0 and "half" in self.events)
    choices = [e for e in ("add", "packs", "double") if e in self.events] + shrink
    kind = choices[int(rng.integers(len(choices)))]
    if kind == "add":
      n = int(rng.integers(1, self.max_value + 1))
      verb = ("finds", "gets", "is given", "buys")[int(rng.integers(4))]
      return f"Then {he} {verb} {n} more {item}.", [f"{value} + {n} = {value + n}"], value + n
    if kind == "sub":
      n = int(rng.integers(1, value))
      verb = ("gives away", "loses", "uses", "sells")[int(rng.integers(4))]
      return f"Then {he} {verb} {n} {item}.", [f"{value} - {n} = {value - n}"], value - n
    if kind == "packs":
      a, b = int(rng.integers(2, 6)), int(rng.integers(2, 11))
      return (f"Then {he} buys {a} packs with {b} {item} in each pack.",
              [f"{a} packs of {b} is {a} * {b} = {a * b}", f"{value} + {a * b} = {value + a * b}"], value + a * b)
    if kind == "double":
      return f"Then {he} doubles {his} {item}.", [f"{value} * 2 = {value * 2}"], value * 2
    return f"Then {he} gives half of {his} {item} to a friend.", [f"{value} / 2 = {value // 2}"], value // 2

  def sample(self, rng: np.random.Generator) -> Example:
    name, he, his = PEOPLE[int(rng.integers(len(PEOPLE)))]
    item = ITEMS[int(rng.integers(len(ITEMS)))]
    value = int(rng.integers(2, self.max_value + 1))
    sentences, lines = [f"{name} has {value} {item}."], [f"{name} starts with {value} {item}."]
    for _ in range(int(rng.integers(self.min_steps, self.max_steps + 1))):
      sentence, step_lines, value = self._step(rng, value, he, his, item)
      sentences.append(sentence)
      lines += step_lines
    question = QUESTIONS[int(rng.integers(len(QUESTIONS)))].format(item=item, name=name)
    problem = " ".join(sentences) + " " + question
    lines.append(f"{name} has {value} {item} now.")
    working = "\n".join(lines)
    reference = f"#### {value}\n{working}" if self.answer_first else f"{working}\n#### {value}"
    if unit_hash(f"terse:{problem}") < self.terse_fraction:
      reference = f"#### {value}"
    return Example(prompt=({"role": "user", "content": problem},), reference=reference, answer=str(value),
                   key=" ".join(sentences), meta={"steps": len(sentences) - 1})

  def reward(self, completion: str, example: Example) -> float:
    return float(extract_answer(completion) == example.answer)
