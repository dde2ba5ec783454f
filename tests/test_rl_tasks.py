"""RL tasks and rewards: countdown's safe expression checker, its generated problems, weighted reward
specs, the format reward, and the GSM8K loader (offline: one-line error; rows -> examples)."""

import numpy as np
import pytest

from llm_jax.tasks import Countdown, GSM8K, make_task
from llm_jax.tasks.countdown import check
from llm_jax.tasks.gsm8k import to_example
from llm_jax.tasks.base import Example
from llm_jax.tasks.rewards import format_reward, make_reward, parse_spec, steps_reward

NUMBERS, TARGET = [25, 5, 3, 7], 60


@pytest.mark.parametrize("expression,want", [
    ("(25 - 5) * 3", "ok"), ("(25-5)*3 = 60", "ok"), ("25 * 3 - 5 * 3", "reused"), ("(7 + 3 + 5) * 25 / 5", "reused"),
    ("(25 - 5) * 3 * 1", "unknown_number"), ("60", "unknown_number"), ("25 + 5 + 3 + 7", "wrong_value"),
    ("7 / (5 - 5)", "reused"), ("25 / (7 - 7)", "reused"), ("3 / (25 - 25)", "reused"),
    ("(25 - 5) * 3)", "syntax"), ("", "syntax"), ("25 5", "syntax"), ("-(5 - 25) * 3", "not_allowed"),
    ("(25 - 5) * 3.0", "not_allowed"), ("2 ** 6", "not_allowed"), ("(25 - 5) * True * 3", "not_allowed"),
    ("__import__('os').system('echo hacked')", "not_allowed"), ("[x for x in ()]", "not_allowed"),
    ("(lambda: 60)()", "not_allowed"), ("25 if 1 else 3", "not_allowed"), ("3 + " * 60, "too_long"),
    ("(" * 150 + "3" + ")" * 150, "too_long"), ("(" * 60 + "3" + ")" * 60, "wrong_value"),
])
def test_countdown_check(expression, want):
  assert check(expression, NUMBERS, TARGET) == want


def test_countdown_division_by_zero_and_exact_division():
  assert check("7 / (3 - 3)", [7, 3, 3], 1) == "div_zero"
  assert check("25 / (5 - 5)", [25, 5, 5], 1) == "div_zero"
  assert check("7 / 3 * 3", [7, 3, 3], 7) == "ok"  # exact rationals, no float rounding
  assert check("(3 + 3) / 4", [3, 3, 4], 1) == "wrong_value"  # 1.5


def test_countdown_problems_are_solved_by_their_references():
  task = make_task("countdown", seed=2)
  train, test = task.examples("train", 60), task.examples("test", 20)
  assert not {e.key for e in train} & {e.key for e in test}
  assert [e.prompt for e in train[:5]] == [e.prompt for e in Countdown(seed=2).examples("train", 5)]
  for ex in train + test:
    assert len(ex.meta["numbers"]) == 4 and 1 <= ex.meta["target"] <= 200
    assert task.reward(ex.reference, ex) == 1.0, ex.reference
    assert str(ex.meta["target"]) in ex.prompt[0]["content"]
    assert task.reward("#### " + " + ".join(map(str, ex.meta["numbers"] * 2)), ex) == 0.0
  assert task.reward("no marker here", train[0]) == 0.0


def test_reward_specs_and_format():
  task = make_task("arithmetic", seed=0)
  ex = task.examples("test", 1)[0]
  reward = make_reward("correct@1,format@0.25", task)
  assert reward(ex.reference, ex) == (1.25, {"correct": 1.0, "format": 1.0})
  assert reward(f"#### {int(ex.answer) + 1}", ex) == (0.25, {"correct": 0.0, "format": 1.0})
  assert reward(f"#### {ex.answer}\nmore words after", ex) == (1.0, {"correct": 1.0, "format": 0.0})
  assert format_reward("working\n####   \n", ex) == 0.0 and format_reward("", ex) == 0.0
  assert parse_spec("correct, format@0.1") == [("correct", 1.0), ("format", 0.1)]
  with pytest.raises(ValueError, match="unknown reward term"):
    make_reward("correct,length@2", task)
  with pytest.raises(ValueError, match="bad weight"):
    parse_spec("correct@x")


def test_steps_reward_credits_the_reference_equations():
  ex = Example((), "Ava starts with 3.\n3 + 4 = 7\n7 - 2 = 5\nAva has 5.\n#### 5", "5", key="ava")
  assert steps_reward(ex.reference, ex) == 1.0
  assert steps_reward("3 + 4 = 7\n7 - 2 = 6\n#### 6", ex) == 0.5  # right until the last step
  assert steps_reward("1 + 1 = 2\n2 + 2 = 4\n#### 5", ex) == 0.0  # true but not this problem's working
  assert steps_reward("3+4=7", ex) == 0.5 and steps_reward("anything", Example((), "#### 5", "5", key="x")) == 0.0
  reward = make_reward("correct@1,steps@0.5", make_task("arithmetic", seed=0))
  assert reward("3 + 4 = 7\n#### 5", ex) == (1.25, {"correct": 1.0, "steps": 0.5})


ROWS = {"train": [{"question": f"Q{i}: 2 + {i}?", "answer": f"2 + {i} = <<2+{i}={2 + i}>>{2 + i}\n#### {2 + i}"}
                  for i in range(5)],
        "test": [{"question": "How much is 1,000 + 200?", "answer": "1000 + 200 = <<1000+200=1200>>1200\n#### 1,200"}]}


def test_gsm8k_rows_and_offline_error():
  ex = to_example(ROWS["test"][0])
  assert ex.reference == "1000 + 200 = 1200\n#### 1,200" and ex.answer == "1200"
  task = GSM8K(seed=0, loader=ROWS.__getitem__)
  assert task.examples("test", 2) == [ex, ex]  # cycles past the end
  train = task.examples("train", 5)
  assert sorted(e.answer for e in train) == ["2", "3", "4", "5", "6"]
  assert task.reward("so 1,200\n#### 1200", ex) == 1.0 and task.reward("#### 12", ex) == 0.0
  assert task.sample(np.random.default_rng(0)) in train
  try:
    import datasets  # pylint: disable=unused-import
  except ImportError:
    with pytest.raises(FileNotFoundError, match="needs the `datasets` package"):
      make_task("gsm8k").examples("test", 1)
