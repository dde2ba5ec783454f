"""Synthetic tasks: determinism, disjoint held-out splits, worked answers, rewards, answer extraction."""

import ml_collections
import pytest

from llm_jax.tasks import Arithmetic, Identity, Spelling, default_config, make_task
from llm_jax.tasks.arithmetic import extract_answer
from llm_jax.tasks.base import extract_marked


@pytest.mark.parametrize("text,want", [
    ("so 3 + 4 = 7\n#### 7", "7"), ("#### 1,200 apples", "1200"), ("#### -5", "-5"), ("####7.0", "7"),
    ("#### 2.5\n#### 9", "2.5"), ("The answer is 7.", None), ("#### none", None), ("", None)])
def test_extract_answer(text, want):
  assert extract_answer(text) == want


@pytest.mark.parametrize("name", ["identity", "arithmetic", "spelling"])
def test_splits_are_deterministic_and_disjoint(name):
  task = make_task(name, seed=3)
  train, test = task.examples("train", 120), task.examples("test", 30)
  assert [e.conversation for e in train[:10]] == [e.conversation for e in make_task(name, seed=3).examples(
      "train", 10)]
  assert not {e.key for e in train} & {e.key for e in test}
  for ex in train[:20] + test[:10]:  # the reference reply earns the reward
    assert ex.conversation[-1]["role"] == "assistant" and ex.prompt[-1]["role"] == "user"
    assert task.reward(ex.reference, ex) == 1.0
    assert task.reward("I don't know.", ex) == 0.0
  other_seed = make_task(name, seed=4).examples("train", 10)
  assert [e.conversation for e in other_seed] != [e.conversation for e in train[:10]]


def test_arithmetic_worked_solution_is_correct():
  for ex in Arithmetic(seed=0, min_steps=3, max_steps=4).examples("train", 50):
    lines = ex.reference.splitlines()
    assert lines[-1] == f"#### {ex.answer}" and 3 <= ex.meta["steps"] <= 4
    for line in lines:  # every "a op b = c" line is true
      if "=" in line:
        lhs, rhs = line.split(" is ")[-1].split("=")
        assert eval(lhs.replace("/", "//")) == int(rhs)  # pylint: disable=eval-used


def test_arithmetic_events_limit_the_operations():
  lines = [line for ex in Arithmetic(seed=0, events="add,sub", max_value=10).examples("train", 40)
           for line in ex.reference.splitlines() if "=" in line]
  assert {line.split()[1] for line in lines} == {"+", "-"}  # no packs, doubling or halving
  with pytest.raises(ValueError, match="events"):
    Arithmetic(events="sub,half")  # nothing can grow a count of 1
  with pytest.raises(ValueError, match="events"):
    Arithmetic(events="add,times")


def test_answer_first_same_problems():
  steps = Arithmetic(seed=1, answer_first=False).examples("test", 20)
  first = Arithmetic(seed=1, answer_first=True).examples("test", 20)
  for s, f in zip(steps, first):
    assert s.prompt == f.prompt and s.answer == f.answer
    assert f.reference.startswith(f"#### {f.answer}\n") and s.reference.endswith(f"\n#### {s.answer}")
    assert sorted(s.reference.splitlines()) == sorted(f.reference.splitlines())
    assert Arithmetic().reward(f.reference, f) == 1.0


def test_terse_fraction_drops_the_working_of_a_share_of_the_same_problems():
  full = Arithmetic(seed=1).examples("train", 400)
  mixed = Arithmetic(seed=1, terse_fraction=0.5).examples("train", 400)
  terse = [m for m in mixed if m.reference == f"#### {m.answer}"]
  assert 150 < len(terse) < 250  # about half, by a hash of the problem
  for f, m in zip(full, mixed):  # the same problems; the rest keep the worked reference
    assert f.prompt == m.prompt and f.answer == m.answer
    assert m.reference in (f.reference, f"#### {f.answer}")
  assert all(m.reference == f"#### {m.answer}" for m in Arithmetic(seed=1, terse_fraction=1).examples("train", 20))
  with pytest.raises(ValueError, match="terse_fraction"):
    Arithmetic(terse_fraction=1.5)


def test_spelling_counts_and_spells():
  task = Spelling(seed=0, words=("strawberry", "banana", "mississippi", "kiwi", "apple"), test_fraction=0.3)
  for ex in task.examples("train", 40):
    word = ex.key
    if ex.meta["kind"] == "count":
      assert ex.answer == str(word.count(ex.meta["letter"]))
      assert all(f"{i + 1}. {c}" in ex.reference for i, c in enumerate(word))
    else:
      assert ex.answer == "-".join(word) and extract_marked(ex.reference) == ex.answer
  strawberry = next(e for e in Spelling(kind="count", words=("strawberry",), test_fraction=0.01).examples(
      "train", 30) if e.meta["letter"] == "r")
  assert strawberry.answer == "3" and "#### 3" in strawberry.reference


def test_identity_uses_configured_facts():
  facts = ml_collections.ConfigDict(dict(name="Zed", maker="Acme Labs", purpose="write haiku"))
  cfg = default_config()
  cfg.identity = facts
  task = make_task("identity", cfg)
  assert isinstance(task, Identity)
  exs = task.examples("train", 60)
  assert {e.meta["intent"] for e in exs} == {"who", "maker", "purpose"}
  for ex in exs:
    assert "Zed" in ex.reference and "Nano" not in ex.reference
    if ex.meta["intent"] == "maker":
      assert "Acme Labs" in ex.reference and ex.answer == "Acme Labs"
  assert any(len(e.prompt) == 3 for e in exs)  # some have a greeting turn first
  assert len({e.prompt[-1]["content"] for e in exs}) > 10  # varied phrasings


def test_make_task_errors():
  with pytest.raises(ValueError, match="unknown task"):
    make_task("chess")
  with pytest.raises(ValueError, match="split"):
    Arithmetic().examples("validation", 1)
