"""Tool-use conversations (render masks, outputs the real tools give, splits, reward) and the tools
off/on evaluation, driven by a scripted engine that uses python when it can."""

import numpy as np
import pytest

from llm_jax.eval.tools import eval_sets, evaluate_tools
from llm_jax.infer.engine import SamplingParams
from llm_jax.infer.tools import make_tools
from llm_jax.infer.tools.python_sandbox import PythonSandbox, SandboxLimits
from llm_jax.tasks.tool_use import KINDS, ToolUse, strip_tools
from llm_jax.tokenizer.bytes import ByteTokenizer
from llm_jax.tokenizer.chat import render, render_for_completion

TOK = ByteTokenizer()
SMALL = dict(num_entities=20, max_digits=8)


@pytest.fixture(scope="module")
def task():
  return ToolUse(seed=0, **SMALL)


def by_kind(task: ToolUse, split: str = "train") -> dict:
  examples = task.examples(split, 40)
  return {k: next(ex for ex in examples if ex.meta["kind"] == k) for k in KINDS}


def test_conversations_render_with_tool_outputs_masked(task):
  out_start, out_end = TOK.special_id("<|output_start|>"), TOK.special_id("<|output_end|>")
  for kind, ex in by_kind(task).items():
    ids, mask = render(ex.conversation, TOK)
    starts, ends = [i for i, t in enumerate(ids) if t == out_start], [i for i, t in enumerate(ids) if t == out_end]
    assert len(starts) == len(ends) == 1, kind
    assert not any(mask[starts[0]:ends[0] + 1])  # the forced output: no loss
    call = TOK.special_id(f"<|{'search' if kind == 'search' else 'python'}_start|>")
    assert mask[ids.index(call)] == 1 and mask[-1] == 1  # the call and the answer are learned
    assert TOK.decode(ids[ends[0] + 1:]).removesuffix("<|assistant_end|>").endswith(f"#### {ex.answer}")


def test_reference_outputs_are_what_the_tools_return(task, tmp_path):
  sandbox = PythonSandbox(SandboxLimits(wall_s=5.0))
  examples = by_kind(task)
  for kind in ("count_letter", "count_chars", "big_arithmetic"):
    parts = {p["type"]: p["text"] for p in examples[kind].parts}
    assert sandbox(parts["python"]) == parts["python_output"] == examples[kind].answer, kind
  spec = task.write_corpus(str(tmp_path / "facts"))
  search = make_tools("search", spec, search_k=task.search_k, search_tokens=task.search_tokens)["search"]
  parts = {p["type"]: p["text"] for p in examples["search"].parts}
  assert search(parts["search"]) == parts["search_output"] and examples["search"].answer in parts["search_output"]


def test_splits_are_disjoint_and_reward_ignores_tool_outputs(task):
  train = {ex.key for ex in task.examples("train", 60)}
  assert train.isdisjoint(ex.key for ex in task.examples("test", 30))
  ex = task.examples("test", 1)[0]
  assert task.reward(f"so\n#### {ex.answer}", ex) == 1.0
  printed = f"<|python_start|>print('#### {ex.answer}')<|python_end|><|output_start|>#### {ex.answer}<|output_end|>"
  assert strip_tools(printed + "so #### 0") == "so #### 0"
  assert task.reward(printed + "I don't know", ex) == 0.0
  with pytest.raises(ValueError, match="kinds"):
    ToolUse(kinds="juggling")


class ScriptedEngine:
  """A stand-in for Engine: each row calls python with its question's reference code, then answers with
  the number the tool returned (or a guess, '#### -1', when no output comes). Honours `force` like Engine."""

  def __init__(self, codes: dict[tuple, str], max_seq_len: int = 4096):
    self.codes, self.max_seq_len = codes, max_seq_len
    self.ends = [TOK.special_id(t) for t in ("<|python_start|>", "<|python_end|>", "<|output_start|>",
                                             "<|output_end|>", "<|assistant_end|>")]

  def _next(self, prompt: list[int], gen: list[int]) -> int:
    py_start, py_end, out_start, out_end, end = self.ends
    call = [py_start] + TOK.encode(self.codes[tuple(prompt)]) + [py_end]
    if len(gen) < len(call):
      return call[len(gen)]
    rest = gen[len(call):]
    if rest and rest[0] == out_start:
      answer = TOK.encode("#### ") + rest[1:rest.index(out_end)] + [end]
      return answer[min(len(rest) - rest.index(out_end) - 1, len(answer) - 1)]
    answer = TOK.encode("#### -1") + [end]
    return answer[min(len(rest), len(answer) - 1)]

  def stream(self, prompts, params: SamplingParams, force=None):
    gens, active = [[] for _ in prompts], np.ones(len(prompts), bool)
    forced = np.full(len(prompts), -1, np.int32)
    for step in range(params.max_new_tokens):
      tokens = np.array([f if f >= 0 else self._next(list(p), g) for p, g, f in zip(prompts, gens, forced)],
                        np.int32)
      for g, t in zip(gens, tokens):
        g.append(int(t))
      yield tokens, np.zeros((len(prompts), 1), np.float32), active.copy()
      active &= ~np.isin(tokens, list(params.stop_ids))
      if step == params.max_new_tokens - 1 or not active.any():
        return
      forced = np.full(len(prompts), -1, np.int32) if force is None else force(tokens, active.copy())

  def generate(self, prompts, params: SamplingParams) -> list[list[int]]:
    out = [[] for _ in prompts]
    for tokens, _, active in self.stream(prompts, params):
      out = [o + [int(t)] if a and t not in params.stop_ids else o for o, t, a in zip(out, tokens, active)]
    return out


def test_tools_off_and_on_side_by_side():
  sets = eval_sets(None, seed=0, names=["count_letter", "big_arithmetic"], n=3)
  codes = {tuple(render_for_completion(list(ex.prompt), TOK)): {p["type"]: p["text"] for p in ex.parts}["python"]
           for _, examples in sets.values() for ex in examples}
  tools = {"python": PythonSandbox(SandboxLimits(wall_s=5.0))}
  metrics, records = evaluate_tools(ScriptedEngine(codes), TOK, tools, sets, max_new_tokens=120)
  for name in ("count_letter", "big_arithmetic", "all"):
    assert metrics[f"eval/tools_{name}/accuracy_off"] == 0.0 and metrics[f"eval/tools_{name}/accuracy_on"] == 1.0
  assert metrics["eval/tools_count_letter/calls_on"] == 1.0 and metrics["eval/tools_all/n"] == 6
  assert len(records) == 6 and records[0]["calls"][0]["output"] == records[0]["answer"]
