"""Countdown: reach a target from a few given numbers with + - * / (each number used at most once).

The reference reply combines two numbers per line ("25 - 5 = 20"), then gives the whole expression
after GSM8K's marker: `#### (25 - 5) * 3`. The reward parses that expression with `ast` (never `eval`):
only integer literals, + - * / and parentheses; each given number used at most as often as it was given;
exact rational arithmetic. Anything else (other syntax, a reused or unknown number, division by zero,
a wrong value, an overlong expression) earns 0.
"""

import ast
import collections
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from llm_jax.tasks.base import Example, Task, extract_marked

MAX_CHARS = 200  # longer expressions are rejected before parsing
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
QUESTIONS = ("Using the numbers {numbers}, make {target}. You may use + - * / and each number at most once.",
             "Reach {target} from {numbers} with + - * /, using each number at most once.",
             "Countdown: numbers {numbers}, target {target}. Combine them with + - * / (each at most once).")


def _leaves(node: ast.AST) -> list[int] | None:
  """The integer literals of an expression tree made only of + - * / on ints; None if anything else."""
  if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
    left, right = _leaves(node.left), _leaves(node.right)
    return None if left is None or right is None else left + right
  if isinstance(node, ast.Constant) and type(node.value) is int:  # bool is not int here
    return [node.value]
  return None


def _value(node: ast.AST) -> Fraction:
  """Exact value of a tree that passed `_leaves`; ZeroDivisionError on a division by zero."""
  if isinstance(node, ast.Constant):
    return Fraction(node.value)
  a, b = _value(node.left), _value(node.right)
  op = type(node.op)
  if op is ast.Add:
    return a + b
  if op is ast.Sub:
    return a - b
  if op is ast.Mult:
    return a * b
  return a / b


def check(expression: str, numbers: Sequence[int], target: int) -> str:
  """'ok' when `expression` reaches `target` using `numbers` at most once each, else the reason:
  too_long, syntax, not_allowed, unknown_number, reused, div_zero, wrong_value."""
  expression = expression.split("=")[0].strip()  # "(25 - 5) * 3 = 60" checks the left side
  if len(expression) > MAX_CHARS:
    return "too_long"
  try:
    tree = ast.parse(expression, mode="eval")
  except (SyntaxError, ValueError, RecursionError, MemoryError):
    return "syntax"
  leaves = _leaves(tree.body)
  if leaves is None:
    return "not_allowed"
  have, used = collections.Counter(numbers), collections.Counter(leaves)
  if any(n not in have for n in used):
    return "unknown_number"
  if any(used[n] > have[n] for n in used):
    return "reused"
  try:
    value = _value(tree.body)
  except ZeroDivisionError:
    return "div_zero"
  except RecursionError:
    return "syntax"
  return "ok" if value == target else "wrong_value"


class Countdown(Task):
  """`num_numbers` numbers in 1..`max_number`; the target is made from 2 or more of them by a random
  expression whose intermediate results are positive integers, and lies in 1..`max_target`."""

  name = "countdown"

  def __init__(self, seed: int = 0, test_fraction: float = 0.2, num_numbers: int = 4, max_number: int = 25,
               max_target: int = 200):
    super().__init__(seed, test_fraction)
    if num_numbers < 2 or max_number < 2:
      raise ValueError(f"countdown needs num_numbers >= 2 and max_number >= 2; got {num_numbers}, {max_number}")
    self.num_numbers, self.max_number, self.max_target = num_numbers, max_number, max_target

  def _combine(self, rng, a: tuple[int, str], b: tuple[int, str]) -> tuple[int, str, str] | None:
    """(value, expression, worked line) of a op b for a random op with a positive integer result."""
    (x, ex), (y, ey) = (a, b) if a[0] >= b[0] else (b, a)
    ops = ["+", "*"] + ["-"] * (x > y) + ["/"] * (y > 1 and x % y == 0)
    op = ops[int(rng.integers(len(ops)))]
    value = {"+": x + y, "-": x - y, "*": x * y, "/": x // y if y else 0}[op]
    wrap = lambda e: e if e.isdigit() else f"({e})"
    return value, f"{wrap(ex)} {op} {wrap(ey)}", f"{x} {op} {y} = {value}"

  def sample(self, rng: np.random.Generator) -> Example:
    while True:
      numbers = [int(n) for n in rng.integers(1, self.max_number + 1, self.num_numbers)]
      use = int(rng.integers(2, self.num_numbers + 1))
      pool = [(n, str(n)) for n in rng.permutation(numbers)[:use].tolist()]
      lines = []
      while len(pool) > 1:
        i, j = rng.choice(len(pool), 2, replace=False)
        value, expr, line = self._combine(rng, pool[i], pool[j])
        pool = [p for k, p in enumerate(pool) if k not in (i, j)] + [(value, expr)]
        lines.append(line)
      target, expression = pool[0]
      if 1 <= target <= self.max_target and target not in numbers:
        break
    shown = ", ".join(map(str, numbers))
    question = QUESTIONS[int(rng.integers(len(QUESTIONS)))].format(numbers=shown, target=target)
    reference = "\n".join(lines) + f"\n#### {expression}"
    return Example(prompt=({"role": "user", "content": question},), reference=reference, answer=str(target),
                   key=f"{sorted(numbers)}->{target}", meta={"numbers": numbers, "target": target})

  def reward(self, completion: str, example: Example) -> float:
    expression = extract_marked(completion)
    if expression is None:
      return 0.0
    return float(check(expression, example.meta["numbers"], example.meta["target"]) == "ok")
