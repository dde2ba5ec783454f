"""Evaluators on fixtures with known answers: pass@k, multiple choice, contamination probes, results."""

import collections
import json
import math

import numpy as np
import pytest

from llm_jax.eval import contamination, generative, multiple_choice, results
from llm_jax.eval.report import write_report
from llm_jax.tasks import Arithmetic
from llm_jax.tokenizer.bytes import ByteTokenizer
from llm_jax.tokenizer.chat import render_for_completion

TOK = ByteTokenizer()


@pytest.mark.parametrize("n,c,k,want", [(5, 2, 1, 0.4), (5, 2, 2, 0.7), (5, 0, 3, 0.0), (3, 2, 2, 1.0),
                                        (10, 3, 5, 1 - 21 / 252), (1, 1, 1, 1.0)])
def test_pass_at_k_hand_values(n, c, k, want):
  assert generative.pass_at_k(n, c, k) == pytest.approx(want)


def test_pass_at_k_matches_combinatorics():
  for n, c, k in [(20, 7, 4), (50, 1, 10), (16, 15, 2)]:
    want = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert generative.pass_at_k(n, c, k) == pytest.approx(want)
  with pytest.raises(ValueError):
    generative.pass_at_k(3, 4, 1)


def test_exact_match():
  assert generative.exact_match("work...\n#### 1,000", "1000")
  assert not generative.exact_match("the answer is 1000", "1000")


class StubEngine:
  """Replies correctly to each prompt on one sample in four (its 1st, 5th, ... request)."""

  def __init__(self, examples):
    self.answer_of = {tuple(render_for_completion(list(e.prompt), TOK)): e.answer for e in examples}
    self.calls, self.stop_ids = collections.Counter(), None

  def generate(self, prompts, params):
    self.stop_ids = params.stop_ids
    out = []
    for p in map(tuple, prompts):
      out.append(TOK.encode(f"#### {self.answer_of[p]}" if self.calls[p] % 4 == 0 else "#### -1"))
      self.calls[p] += 1
    return out


def test_evaluate_task_accuracy_and_pass_at_k():
  task = Arithmetic(seed=0)
  examples = task.examples("test", 5)
  engine = StubEngine(examples)
  metrics, records = generative.evaluate_task(engine, TOK, task, examples, num_samples=4, temperature=1.0,
                                              ks=(1, 2, 4), batch_size=3)
  assert metrics["accuracy"] == pytest.approx(0.25) and metrics["pass@1"] == pytest.approx(0.25)
  assert metrics["pass@2"] == pytest.approx(0.5) and metrics["pass@4"] == 1.0 and metrics["n"] == 5
  assert TOK.special_id("<|assistant_end|>") in engine.stop_ids
  assert records[0]["rewards"] == [1.0, 0.0, 0.0, 0.0] and records[0]["answer"] == examples[0].answer
  engine.max_seq_len = 10  # prompts that leave no room to answer are skipped and counted
  metrics, _ = generative.evaluate_task(engine, TOK, task, examples)
  assert metrics == {"accuracy": 0.0, "n": 0, "skipped": 5, "pass@1": 0.0}


def table_loglik(table):
  """A LogLikelihood that looks the continuation text up in `table`."""
  return lambda requests: [table[TOK.decode(cont)] for _, cont in requests]


def test_multiple_choice_acc_and_norm():
  items = [{"context": "Q1", "choices": [" a", " a much longer answer"], "answer": 1},
           {"context": "Q2", "choices": [" yes", " no"], "answer": 0}]
  lls = {" a": -2.0, " a much longer answer": -5.0, " yes": -1.0, " no": -3.0}
  m = multiple_choice.evaluate(items, TOK, table_loglik(lls))
  assert m["acc"] == 0.5 and m["acc_norm"] == 1.0 and m["predictions"] == [0, 0] and m["n"] == 2


def test_rows_convert_to_items(tmp_path):
  mmlu = {"question": "2+2?", "choices": ["3", "4", "5", "6"], "answer": 1, "subject": "math"}
  arc = {"question": "Sky?", "choices": {"text": ["blue", "green"], "label": ["A", "B"]}, "answerKey": "A"}
  hs = {"activity_label": "Baking", "ctx": "She mixes the flour [title] then", "endings": ["bakes.", "swims."],
        "label": "0"}
  own = {"context": "x", "choices": [" y", " z"], "answer": 1}
  path = tmp_path / "items.jsonl"
  path.write_text("\n".join(json.dumps(r) for r in (mmlu, arc, hs, own)) + "\n")
  items = multiple_choice.read_items(str(path))
  assert items[0] == {"context": "2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:", "choices": [" A", " B", " C", " D"],
                      "answer": 1}
  assert items[1] == {"context": "Question: Sky?\nAnswer:", "choices": [" blue", " green"], "answer": 0}
  assert items[2]["context"] == "Baking: She mixes the flour. then" and items[2]["choices"][0] == " bakes."
  assert items[3] == own
  with pytest.raises(ValueError, match="not an index"):
    multiple_choice.to_item({"context": "x", "choices": [" y", " z"], "answer": 2})


def test_hf_items_fail_in_one_line_offline():
  with pytest.raises(RuntimeError) as e:
    multiple_choice.load_hf_items("arc_easy", limit=2)
  assert "\n" not in str(e.value) and "local JSONL" in str(e.value)


ITEMS = [f"Item {i}: fact number {i}." for i in range(12)]


def memorised_loglik(requests):
  """Scores a sequence higher for every pair of items in their canonical adjacent order."""
  out = []
  for _, ids in requests:
    text = TOK.decode(ids).split("\n\n")
    idx = [ITEMS.index(t) for t in text]
    out.append(-100.0 + 5.0 * sum(b == a + 1 for a, b in zip(idx, idx[1:])))
  return out


def test_order_test_detects_memorised_order():
  hit = contamination.order_test(ITEMS, TOK, memorised_loglik, shard_size=4, num_shuffles=19)
  assert hit["p_value"] <= 0.1 and hit["gap"] > 0 and hit["shards"] == 3
  clean = contamination.order_test(ITEMS, TOK, lambda reqs: [-float(len(c)) for _, c in reqs], shard_size=4,
                                   num_shuffles=19)
  assert clean["gap"] == 0 and clean["p_value"] == 1.0


def test_choice_order_test_catches_position_memory():
  items = [{"context": f"Q{i}", "choices": [" w", " x", " y", " z"], "answer": 0} for i in range(40)]

  def first_position(requests):  # a model that always likes whatever comes first
    out, last = [], None
    for ctx, _ in requests:
      out.append(0.0 if ctx != last else -1.0)
      last = ctx
    return out

  m = contamination.choice_order_test(items, TOK, first_position)
  assert m["acc_original"] == 1.0 and m["acc_shuffled"] < 0.6 and m["gap"] > 0.4
  shuffled = contamination.shuffle_choices(items[:3], seed=1)
  for s in shuffled:
    assert s["choices"][s["answer"]] == " w"


def test_results_merge_and_report(tmp_path):
  wd = str(tmp_path)
  results.merge_results(wd, results.flatten("arithmetic", {"accuracy": 0.5, "n": 10, "note": "x"}))
  merged = results.merge_results(wd, {"eval/arithmetic/accuracy": 0.75, "eval/loss/bpb": 1.2})
  assert merged == {"eval/arithmetic/accuracy": 0.75, "eval/arithmetic/n": 10, "eval/loss/bpb": 1.2}
  assert results.read_results(wd) == merged
  with pytest.raises(ValueError, match="eval/<task>/<metric>"):
    results.merge_results(wd, {"accuracy": 1.0})
  text = open(write_report(wd)).read()
  assert "| task | accuracy | n | bpb |" in text and "| arithmetic | 0.75 | 10 |  |" in text
  assert np.isclose(results.read_results(wd)["eval/loss/bpb"], 1.2)
