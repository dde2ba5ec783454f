"""Best-of-n against a proxy reward model: N samples per held-out prompt from the start policy, scored by
the proxy and the gold function; the unbiased best-of-n estimates (posttrain/overoptimization.py) for
each n give gold and proxy scores against KL = log n - (n - 1) / n.

Artifact: workdir/data/overoptimization/bon.json (samples, scores and points); skipped when it exists.
"""

import json
import os

import ml_collections
import numpy as np

from llm_jax.posttrain import gold, overoptimization
from llm_jax.posttrain.preference_data import sample_replies, task_prompts
from llm_jax.posttrain.rm_reward import RewardModelScorer
from llm_jax.tokenizer.chat import detect_template
from llm_jax.train.checkpoint import write_json

PATH = "data/overoptimization/bon.json"


def default_config() -> ml_collections.ConfigDict:
  """The `best_of_n` section."""
  c = ml_collections.ConfigDict()
  c.policy_stage = "sft"  # the start policy sampled
  c.prompts = 32  # held-out prompts (the task's test split)
  c.samples = 64  # N samples per prompt (the largest n)
  c.temperature = 1.0
  c.top_p = 1.0
  c.max_new_tokens = 96
  c.batch_size = 64  # generation and scoring batch
  return c


def ns_up_to(N: int) -> list[int]:
  """1, 2, 4, ... up to N (and N itself)."""
  out = [1 << k for k in range(N.bit_length()) if 1 << k <= N]
  return out + ([N] if out[-1] != N else [])


def load_best_of_n(workdir: str) -> dict | None:
  """The artifact of an earlier run, or None."""
  path = os.path.join(workdir, PATH)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def run_best_of_n(cfg, workdir: str, tokenizer, proxy_stage: str, seq_len: int) -> dict:
  """Sample, score and summarise best-of-n (see the module docstring); returns the artifact's dict."""
  path, done = os.path.join(workdir, PATH), load_best_of_n(workdir)
  if done is not None:
    print(f"[best_of_n] {PATH} exists: skipping", flush=True)
    return done
  bc = cfg.best_of_n
  examples = task_prompts(cfg, "test", bc.prompts)
  print(f"[best_of_n] sampling {bc.samples} replies to each of {len(examples)} held-out prompts", flush=True)
  replies = sample_replies(workdir, bc.policy_stage, [ex.prompt for ex in examples], bc.samples, bc, cfg.seed + 17)
  scorer = RewardModelScorer(workdir, proxy_stage, tokenizer, detect_template(tokenizer), seq_len, bc.batch_size)
  proxy = scorer.scores([ex.prompt for ex in examples for _ in range(bc.samples)], sum(replies, []))
  proxy = proxy.reshape(len(examples), bc.samples)
  gold_s = np.array([[gold.score(r, ex.answer, cfg.gold, ex.prompt) for r in rs] for rs, ex in zip(replies, examples)])
  points = [{"n": n, "kl": overoptimization.bon_kl(n), "proxy": overoptimization.bon_expectation(proxy, proxy, n),
             "gold": overoptimization.bon_expectation(proxy, gold_s, n)} for n in ns_up_to(bc.samples)]
  out = {"points": points, "samples": [
      {"prompt": ex.prompt[-1]["content"], "answer": ex.answer, "replies": rs, "proxy": p.tolist(), "gold": g.tolist()}
      for ex, rs, p, g in zip(examples, replies, proxy, gold_s)]}
  os.makedirs(os.path.dirname(path), exist_ok=True)
  write_json(path, out)
  for p in points:
    print(f"[best_of_n] n={p['n']:4d} kl {p['kl']:.3f} proxy {p['proxy']:.3f} gold {p['gold']:.3f}", flush=True)
  return out
