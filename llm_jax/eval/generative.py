"""Generative evaluation: sample replies to a task's held-out prompts, score them with the task's reward
(exact match of the extracted `####` answer, GSM8K style), and estimate pass@k.

pass@k is the unbiased estimator of Chen et al. (2021): with n samples of which c are correct,
pass@k = 1 - C(n - c, k) / C(n, k), computed as a stable product.
"""

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.tasks.base import Example, Task, extract_number
from llm_jax.tokenizer.chat import render_for_completion, stop_ids


def pass_at_k(n: int, c: int, k: int) -> float:
  """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
  if not 0 <= c <= n or not 1 <= k <= n:
    raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
  if n - c < k:
    return 1.0
  return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def exact_match(completion: str, answer: str, extract: Callable[[str], str | None] = extract_number) -> bool:
  """The answer extracted from the completion equals `answer` (both canonical strings)."""
  got = extract(completion)
  return got is not None and got == answer


def sample_completions(engine: Engine, tokenizer, prompts: Sequence[list[int]], params: SamplingParams,
                       num_samples: int = 1, batch_size: int = 16) -> list[list[str]]:
  """`num_samples` decoded replies per prompt; batches use seeds params.seed, params.seed + 1, ..."""
  flat = [p for p in prompts for _ in range(num_samples)]
  texts = []
  for b, start in enumerate(range(0, len(flat), batch_size)):
    chunk = flat[start:start + batch_size]
    batch_params = dataclasses.replace(params, seed=params.seed + b)
    texts += [tokenizer.decode(ids) for ids in engine.generate(chunk, batch_params)]
  return [texts[i * num_samples:(i + 1) * num_samples] for i in range(len(prompts))]


def evaluate_task(engine: Engine, tokenizer, task: Task, examples: Sequence[Example], *, num_samples: int = 1,
                  temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 256, batch_size: int = 16,
                  ks: Sequence[int] = (1,), template: str = "llm_jax", seed: int = 0) -> tuple[dict, list[dict]]:
  """Metrics {accuracy, pass@k for k <= num_samples, n, skipped} and per-example records (prompt,
  replies, rewards). accuracy is the mean reward over all samples (greedy: temperature 0, one sample);
  examples whose prompt leaves no room to answer in the model's context are skipped and counted."""
  prompts = [render_for_completion(list(ex.prompt), tokenizer, template=template) for ex in examples]
  limit = getattr(engine, "max_seq_len", None)
  fits = [limit is None or len(p) < limit for p in prompts]
  skipped = len(examples) - sum(fits)
  examples = [ex for ex, ok in zip(examples, fits) if ok]
  prompts = [p for p, ok in zip(prompts, fits) if ok]
  params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                          stop_ids=stop_ids(tokenizer, template), seed=seed)
  replies = sample_completions(engine, tokenizer, prompts, params, num_samples, batch_size)
  rewards = np.array([[task.reward(r, ex) for r in rs] for rs, ex in zip(replies, examples)], np.float64).reshape(
      len(examples), num_samples)
  correct = (rewards >= 1.0).sum(axis=1)
  metrics = {"accuracy": float(rewards.mean()) if rewards.size else 0.0, "n": len(examples), "skipped": skipped}
  for k in ks:
    if k <= num_samples:
      metrics[f"pass@{k}"] = float(np.mean([pass_at_k(num_samples, int(c), k) for c in correct])) if len(
          correct) else 0.0
  records = [{"prompt": ex.prompt[-1]["content"], "answer": ex.answer, "replies": rs, "rewards": r.tolist()}
             for ex, rs, r in zip(examples, replies, rewards)]
  return metrics, records
