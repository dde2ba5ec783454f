"""What the RL stage shows of itself: held-out pass@k and reply lengths, and sample completions files.

pass@k uses the unbiased estimator (eval/generative.py) over `num_samples` replies per held-out prompt,
sampled like the rollouts (temperature 1 by default); pass@1 is then the mean correctness.
"""

import os
from collections.abc import Sequence

import numpy as np

from llm_jax.eval.generative import pass_at_k
from llm_jax.eval.results import read_results
from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.posttrain.rollouts import Rollouts, sample_groups
from llm_jax.tasks.base import Example, Task


def evaluate_policy(engine: Engine, tokenizer, task: Task, examples: Sequence[Example], params: SamplingParams, *,
                    num_samples: int = 16, ks: Sequence[int] = (1, 16), batch_size: int = 0,
                    template: str = "llm_jax", tool_engine=None) -> dict[str, float]:
  """{pass@k for k <= num_samples, accuracy, response_len (tokens), truncated (fraction), n}."""
  if not examples:
    return {"n": 0}
  rollouts = sample_groups(engine, tokenizer, examples, num_samples, params, lambda t, ex: (task.reward(t, ex), {}),
                           template=template, batch_size=batch_size, tool_engine=tool_engine)
  correct_N = (rollouts.rewards >= 1.0).sum(axis=1)
  metrics = {f"pass@{k}": float(np.mean([pass_at_k(num_samples, int(c), k) for c in correct_N]))
             for k in ks if k <= num_samples}
  metrics.update(accuracy=float(rollouts.rewards.mean()), response_len=float(rollouts.lengths.mean()),
                 truncated=float(rollouts.truncated.mean()), n=len(examples))
  return metrics


def write_rollout_samples(workdir: str, step: int, rollouts: Rollouts, num_prompts: int = 4,
                          per_prompt: int = 2) -> str:
  """workdir/samples/rl_step<step>.txt: a few prompts with some of their completions and rewards."""
  path = os.path.join(workdir, "samples", f"rl_step{step}.txt")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    for ex, texts, rewards, row in list(zip(rollouts.examples, rollouts.texts, rollouts.rewards,
                                            rollouts.completions))[:num_prompts]:
      f.write(f"### user: {ex.prompt[-1]['content']}\n(answer: {ex.answer}; group rewards: "
              f"{' '.join(f'{r:g}' for r in rewards)})\n")
      for text, reward, c in list(zip(texts, rewards, row))[:per_prompt]:
        cut = "" if c.finished else " [truncated]"
        f.write(f"--- reward {reward:g}, {len(c.ids)} tokens{cut}\n{text}\n")
      f.write("\n")
  return path


def write_before_after(workdir: str, task: str, before: str, after: str) -> str:
  """workdir/sections/rl_<task>.md (appended to report.md): held-out pass@k, accuracy and reply length of
  the model before RL (`before` stage) and after (`after`), from eval.json's eval/rl_<task>@<stage>/ keys."""
  results = read_results(workdir)
  row = lambda stage: {k.rsplit("/", 1)[1]: v for k, v in results.items() if k.startswith(f"eval/rl_{task}@{stage}/")}
  b, a = row(before), row(after)
  metrics = [m for m in b if m in a and m != "n"]
  lines = [f"## RL on {task}: before and after", "",
           f"Held-out {task} prompts ({int(a.get('n', 0))}), replies sampled like the rollouts.", "",
           f"| metric | {before} | {after} |", "|---|---|---|"]
  lines += [f"| {m} | {b[m]:.4g} | {a[m]:.4g} |" for m in metrics]
  path = os.path.join(workdir, "sections", f"rl_{task}.md")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return path
