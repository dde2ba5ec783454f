"""Tools off vs on: the same held-out questions answered by the plain engine and by the engine with tools.

Sets: the tool_use kinds (count_letter, count_chars, big_arithmetic, search) and the spelling task's
letter-counting questions. Each answer is scored on the model's prose (tool calls and outputs removed,
so an answer a tool printed earns nothing). Results go to eval.json as eval/tools_<set>/{accuracy_off,
accuracy_on, calls_on, n} plus eval/tools_all/..., and the replies to samples/eval_<stage>_tools.jsonl.
"""

import json
import os
from collections.abc import Sequence

import ml_collections
import numpy as np

from llm_jax.eval import results
from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.tool_engine import ToolEngine, ToolLimits
from llm_jax.tasks.base import Example, Task
from llm_jax.tasks.spelling import Spelling
from llm_jax.tasks.tool_use import KINDS, ToolUse, default_config as tool_use_config, strip_tools
from llm_jax.tokenizer.chat import render_for_completion, stop_ids

SETS = KINDS + ("spelling",)


def default_config() -> ml_collections.ConfigDict:
  """The `tools` section: which tools the engine runs, their limits, and the off/on evaluation."""
  c = ml_collections.ConfigDict()
  c.names = "python,search"  # tools the engine runs
  c.max_calls = 3  # tool calls per answer
  c.max_output_tokens = 128  # tokens of one tool output (cut with a marker)
  c.python_wall_s = 5.0  # sandbox limits (llm_jax/infer/tools/python_sandbox.py)
  c.python_cpu_s = 3
  c.python_memory_mb = 512
  c.eval_sets = ",".join(SETS)  # held-out sets answered with tools off and on
  c.num_examples = 40  # per set
  c.max_new_tokens = 160  # reply budget, tool outputs included
  c.batch_size = 16
  c.mixture_weight = 0.4  # share of tool-use conversations in the fine-tuning data (experiments/tools.py)
  return c


def eval_sets(task_cfg, seed: int, names: Sequence[str], n: int) -> dict[str, tuple[Task, list[Example]]]:
  """{set: (task, its first n held-out examples)} for `names` out of SETS."""
  tool_cfg = (task_cfg.get("tool_use") if task_cfg is not None else None) or tool_use_config()
  test_fraction = task_cfg.test_fraction if task_cfg is not None else 0.2
  out = {}
  for name in names:
    if name not in SETS:
      raise ValueError(f"unknown tool eval set {name!r}; choose from {', '.join(SETS)}")
    task = (Spelling(seed, test_fraction, kind="count") if name == "spelling" else
            ToolUse(seed, test_fraction, **{**tool_cfg.to_dict(), "kinds": name}))
    out[name] = (task, task.examples("test", n))
  return out


def _score(task: Task, texts: list[str], examples: Sequence[Example]) -> list[float]:
  return [task.reward(strip_tools(t), ex) for t, ex in zip(texts, examples)]


def evaluate_tools(engine: Engine, tokenizer, tools: dict, sets: dict[str, tuple[Task, list[Example]]], *,
                   limits: ToolLimits = ToolLimits(), max_new_tokens: int = 160, batch_size: int = 16,
                   template: str = "llm_jax", seed: int = 0) -> tuple[dict, list[dict]]:
  """({eval/tools_<set>/<metric>: value}, per-example records); greedy decoding."""
  tool_engine = ToolEngine(engine, tokenizer, tools, limits)
  params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, stop_ids=stop_ids(tokenizer, template),
                          seed=seed)
  metrics, records, all_off, all_on = {}, [], [], []
  for name, (task, examples) in sets.items():
    examples = [ex for ex in examples if len(render_for_completion(list(ex.prompt), tokenizer,
                                                                   template=template)) < engine.max_seq_len]
    off, on = [], []
    for start in range(0, len(examples), batch_size):
      chunk = examples[start:start + batch_size]
      prompts = [render_for_completion(list(ex.prompt), tokenizer, template=template) for ex in chunk]
      off += [tokenizer.decode(ids) for ids in engine.generate(prompts, params)]
      on += tool_engine.complete(prompts, params)
    reward_off = _score(task, off, examples)
    reward_on = _score(task, [tokenizer.decode(c.ids) for c in on], examples)
    all_off += reward_off
    all_on += reward_on
    metrics.update(results.flatten(f"tools_{name}", {
        "accuracy_off": float(np.mean(reward_off)) if examples else 0.0,
        "accuracy_on": float(np.mean(reward_on)) if examples else 0.0,
        "calls_on": float(np.mean([len(c.calls) for c in on])) if examples else 0.0, "n": len(examples)}))
    records += [{"set": name, "prompt": ex.prompt[-1]["content"], "answer": ex.answer, "reply_off": r_off,
                 "reply_on": tokenizer.decode(c.ids), "reward_off": a, "reward_on": b,
                 "calls": [{"tool": k.tool, "input": k.text, "output": k.output} for k in c.calls]}
                for ex, r_off, c, a, b in zip(examples, off, on, reward_off, reward_on)]
  metrics.update(results.flatten("tools_all", {"accuracy_off": float(np.mean(all_off)) if all_off else 0.0,
                                               "accuracy_on": float(np.mean(all_on)) if all_on else 0.0,
                                               "n": len(all_off)}))
  return metrics, records


def build_tools(cfg, workdir: str) -> dict:
  """The configured tools; search searches the tool_use collection, written to workdir/data/tool_facts."""
  from llm_jax.infer.tools import make_tools  # pylint: disable=g-import-not-at-top
  from llm_jax.infer.tools.python_sandbox import SandboxLimits  # pylint: disable=g-import-not-at-top
  tc, task_cfg = cfg.tools, (cfg.get("tasks") or ml_collections.ConfigDict()).get("tool_use") or tool_use_config()
  names = [n.strip() for n in tc.names.split(",") if n.strip()]
  spec = ""
  if "search" in names:
    spec = ToolUse(**{k: task_cfg[k] for k in ("num_entities", "facts_seed")}).write_corpus(
        os.path.join(workdir, "data", "tool_facts"))
  limits = SandboxLimits(wall_s=tc.python_wall_s, cpu_s=tc.python_cpu_s, memory_mb=tc.python_memory_mb)
  return make_tools(names, spec, python_limits=limits, search_k=task_cfg.search_k,
                    search_tokens=task_cfg.search_tokens)


def run_tool_eval(cfg, workdir: str, stage: str, model=None) -> dict:
  """Evaluate `stage` with tools off and on; merges into eval.json and returns the metrics."""
  from llm_jax.infer.load import load_stage  # pylint: disable=g-import-not-at-top
  from llm_jax.tokenizer.chat import detect_template  # pylint: disable=g-import-not-at-top
  graphdef, params, stage_cfg, tokenizer = model or load_stage(workdir, stage)
  tc = cfg.tools
  sets = eval_sets(cfg.get("tasks"), cfg.seed, [s.strip() for s in tc.eval_sets.split(",") if s.strip()],
                   tc.num_examples)
  metrics, records = evaluate_tools(
      Engine(graphdef, params, stage_cfg.model.max_seq_len), tokenizer, build_tools(cfg, workdir), sets,
      limits=ToolLimits(tc.max_calls, tc.max_output_tokens), max_new_tokens=tc.max_new_tokens,
      batch_size=tc.batch_size, template=detect_template(tokenizer), seed=cfg.seed)
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  with open(os.path.join(workdir, "samples", f"eval_{stage}_tools.jsonl"), "w") as f:
    f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
  print("[eval] tools off / on: " + ", ".join(
      f"{k.split('/')[1][6:]} {metrics[k]:.0%} / {metrics[k.replace('_off', '_on')]:.0%}"
      for k in metrics if k.endswith("accuracy_off")), flush=True)
  results.merge_results(workdir, metrics)
  return metrics
