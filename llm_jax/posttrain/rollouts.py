"""Rollouts: G sampled replies per prompt from the KV-cache engine (optionally running tools), their
rewards, and the padded [B, T] arrays an RL step trains on.

Completions keep their stop token (the policy learns to stop) and a per-token `forced` flag: tokens the
tool engine fed in (tool outputs) carry no loss. A completion that never reached a stop token was cut
by the length budget (`truncated`). Rewards read the decoded text without the stop token and, with
tools, without tool calls and outputs (an answer a tool printed earns nothing by itself).
"""

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.tool_engine import Completion, ToolEngine
from llm_jax.posttrain import grpo
from llm_jax.tasks.base import Example
from llm_jax.tasks.tool_use import strip_tools
from llm_jax.tokenizer.chat import render_for_completion

RewardFn = Callable[[str, Example], tuple[float, dict[str, float]]]


@dataclasses.dataclass
class Rollouts:
  """N prompts with G completions each."""
  examples: list[Example]
  prompts: list[list[int]]
  completions: list[list[Completion]]  # [N][G]
  texts: list[list[str]]  # [N][G], what the reward read
  rewards: np.ndarray  # float32[N, G], weighted total
  parts: dict[str, np.ndarray]  # reward term -> float32[N, G]

  @property
  def truncated(self) -> np.ndarray:
    return np.array([[not c.finished for c in row] for row in self.completions], bool)

  @property
  def lengths(self) -> np.ndarray:
    """int[N, G]: generated tokens per completion, stop and forced tokens included."""
    return np.array([[len(c.ids) for c in row] for row in self.completions], np.int64)


def complete(engine: Engine, prompts: Sequence[Sequence[int]], params: SamplingParams,
             tool_engine: ToolEngine | None = None) -> list[Completion]:
  """One completion per prompt, stop token included; with `tool_engine`, tools run and their outputs
  are marked forced."""
  if tool_engine is not None:
    return tool_engine.complete(prompts, params, include_stop=True)
  stop, out = set(params.stop_ids), [Completion([], [], []) for _ in prompts]
  for tokens_B, _, active_B in engine.stream(prompts, params):
    for i in np.flatnonzero(active_B):
      token = int(tokens_B[i])
      out[i].ids.append(token)
      out[i].forced.append(False)
      out[i].finished |= token in stop
  return out


def reply_text(tokenizer, completion: Completion, tools: bool = False) -> str:
  """The completion's text without its stop token (and without tool calls and outputs when `tools`)."""
  text = tokenizer.decode(completion.ids[:-1] if completion.finished else completion.ids)
  return strip_tools(text) if tools else text


def sample_groups(engine: Engine, tokenizer, examples: Sequence[Example], group_size: int, params: SamplingParams,
                  reward_fn: RewardFn, *, template: str = "llm_jax", batch_size: int = 0,
                  tool_engine: ToolEngine | None = None) -> Rollouts:
  """`group_size` completions of each example's prompt, in engine batches of `batch_size` rows (0: all at
  once; a short last batch is padded so every batch has one shape); batch b samples with seed
  params.seed + b."""
  prompts = [render_for_completion(list(ex.prompt), tokenizer, template=template) for ex in examples]
  flat = [p for p in prompts for _ in range(group_size)]
  size = batch_size or len(flat)
  done: list[Completion] = []
  for b, start in enumerate(range(0, len(flat), size)):
    chunk = flat[start:start + size]
    padded = chunk + [chunk[0]] * (size - len(chunk))
    done += complete(engine, padded, dataclasses.replace(params, seed=params.seed + b), tool_engine)[:len(chunk)]
  groups = [done[i * group_size:(i + 1) * group_size] for i in range(len(examples))]
  texts = [[reply_text(tokenizer, c, tool_engine is not None) for c in row] for row in groups]
  scored = [[reward_fn(t, ex) for t in row] for row, ex in zip(texts, examples)]
  rewards = np.array([[total for total, _ in row] for row in scored], np.float32).reshape(len(examples), group_size)
  names = list(scored[0][0][1]) if scored else []
  parts = {n: np.array([[p[n] for _, p in row] for row in scored], np.float32) for n in names}
  return Rollouts(list(examples), prompts, groups, texts, rewards, parts)


def to_batch(prompts: Sequence[Sequence[int]], completions: Sequence[Completion], weights: Sequence[float],
             seq_len: int) -> dict[str, np.ndarray]:
  """[B, seq_len] arrays of prompt + completion rows (right-padded): tokens, positions, targets, and
  mask = the row's weight where the target is a completion token the model chose (not forced)."""
  B = len(prompts)
  out = {k: np.zeros((B, seq_len), np.int32) for k in ("tokens", "positions", "targets")}
  out["mask"] = np.zeros((B, seq_len), np.float32)
  out["positions"][:] = np.arange(seq_len)
  for i, (prompt, c, w) in enumerate(zip(prompts, completions, weights)):
    ids = (list(prompt) + list(c.ids))[:seq_len + 1]
    learn = ([0.0] * len(prompt) + [0.0 if f else float(w) for f in c.forced])[:seq_len + 1]
    n = len(ids) - 1
    out["tokens"][i, :n] = ids[:-1]
    out["targets"][i, :n] = ids[1:]
    out["mask"][i, :n] = learn[1:]
  return out


def prompt_pool(task, tokenizer, template: str, split: str, n: int, max_prompt_len: int) -> list[Example]:
  """The first `n` examples of `split` whose rendered prompt fits `max_prompt_len` tokens."""
  fits = [ex for ex in task.examples(split, n)
          if len(render_for_completion(list(ex.prompt), tokenizer, template=template)) <= max_prompt_len]
  if not fits:
    raise ValueError(f"no {split} prompt of task {task.name!r} fits rl.max_prompt_len={max_prompt_len} tokens")
  return fits


def build_batch(ro: Rollouts, seq_len: int, *, truncation: str = "none", penalty: float = 1.0,
                drop_zero_variance: bool = True, scale: str = "group") -> tuple[dict[str, np.ndarray], dict]:
  """(host arrays for the update step, metrics of the rollouts): `completion` marks every sampled token
  (for entropy and KL metrics), `mask` weighs it as truncation and zero-variance dropping say, `adv` is
  each row's group advantage (grpo.py)."""
  rewards_NxG, weights_NxG = grpo.apply_truncation(ro.rewards, ro.truncated, truncation, penalty)
  zero_N = grpo.zero_variance(rewards_NxG)
  if drop_zero_variance:
    weights_NxG = weights_NxG * ~zero_N[:, None]
  G = rewards_NxG.shape[1]
  completions = [c for row in ro.completions for c in row]
  host = to_batch([p for p in ro.prompts for _ in range(G)], completions, [1.0] * len(completions), seq_len)
  host["completion"] = host.pop("mask")
  host["mask"] = host["completion"] * weights_NxG.reshape(-1, 1)
  host["adv"] = grpo.group_advantages(rewards_NxG, scale).reshape(-1)
  lengths = ro.lengths
  metrics = {"rl/reward_mean": float(ro.rewards.mean()), "rl/reward_std": float(ro.rewards.std()),
             "rl/zero_var_frac": float(zero_N.mean()), "rl/response_len": float(lengths.mean()),
             "rl/truncated_frac": float(ro.truncated.mean()), "rl/kept_frac": float((weights_NxG > 0).mean()),
             "rl/tokens": float(lengths.sum())}
  if len(ro.parts) > 1:
    metrics.update({f"rl/reward_{name}": float(v.mean()) for name, v in ro.parts.items()})
  return host, metrics
