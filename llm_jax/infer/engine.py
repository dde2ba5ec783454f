"""Batched generation with a KV cache: one jitted prefill, one jitted decode step, static shapes.

Prompts of different lengths share a batch: each row writes its keys/values at its own positions and
stops on its own stop tokens. Shapes are bucketed so new prompt lengths rarely recompile. Rows can be
given forced tokens (tool outputs, see tool_engine.py): the decode step takes a per-row override array
(-1 = sample), so forcing never recompiles.
"""

import dataclasses
from typing import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from llm_jax.infer.sampling import sample


@dataclasses.dataclass
class SamplingParams:
  max_new_tokens: int = 128
  temperature: float = 1.0  # 0 = greedy
  top_k: int = 0  # 0 = off
  top_p: float = 1.0  # 1 = off
  stop_ids: Sequence[int] = ()
  seed: int = 0


def _bucket(n: int, minimum: int = 16) -> int:
  return max(minimum, 1 << (max(n, 1) - 1).bit_length())


class Engine:
  """generate(prompts) -> completions, for a model given as (graphdef, params)."""

  def __init__(self, graphdef, params, max_seq_len: int):
    self.graphdef, self.params, self.max_seq_len = graphdef, params, max_seq_len
    self._prefill = jax.jit(self._prefill_fn, donate_argnums=(3,))
    self._decode = jax.jit(self._decode_fn, donate_argnums=(3,))

  def _prefill_fn(self, params, tokens_BxP, lengths_B, cache, rng, temperature_B, top_k_B, top_p_B):
    model = nnx.merge(self.graphdef, params)
    positions_BxP = jnp.broadcast_to(jnp.arange(tokens_BxP.shape[1]), tokens_BxP.shape)
    logits_BxPxV, cache = model(tokens_BxP, positions_BxP, cache=cache)
    last_BxV = jnp.take_along_axis(logits_BxPxV, (lengths_B - 1)[:, None, None], axis=1)[:, 0]
    return sample(rng, last_BxV, temperature_B, top_k_B, top_p_B), last_BxV, cache

  def _decode_fn(self, params, token_B, position_B, cache, rng, temperature_B, top_k_B, top_p_B, forced_B):
    model = nnx.merge(self.graphdef, params)
    logits_Bx1xV, cache = model(token_B[:, None], position_B[:, None], cache=cache)
    sampled_B = sample(rng, logits_Bx1xV[:, 0], temperature_B, top_k_B, top_p_B)
    return jnp.where(forced_B >= 0, forced_B, sampled_B), logits_Bx1xV[:, 0], cache

  def check_fits(self, prompt_len: int) -> None:
    if prompt_len >= self.max_seq_len:
      raise ValueError(f"prompt of {prompt_len} tokens does not fit the model's context of {self.max_seq_len} "
                       "tokens (one is needed to generate); shorten the prompt")
    if prompt_len == 0:
      raise ValueError("empty prompt: give at least one token (e.g. the tokenizer's BOS)")

  def stream(self, prompts: Sequence[Sequence[int]], params: SamplingParams,
             force: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
             ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yields (tokens int32[B], logits float32[B, V], active bool[B]) per generated position; rows that
    have finished (stop token or length) are inactive and their tokens are to be ignored.
    `force(tokens, active) -> int32[B]`, called after each yield, gives the next position's token per
    row (-1: sample it), e.g. tool output the engine must feed instead of what the model samples."""
    B = len(prompts)
    lengths = np.array([len(p) for p in prompts], np.int32)
    for n in lengths:
      self.check_fits(int(n))
    P = min(_bucket(int(lengths.max())), self.max_seq_len)
    budget = int(min(params.max_new_tokens, self.max_seq_len - lengths.max()))
    S = min(_bucket(P + budget), self.max_seq_len)
    tokens_BxP = np.zeros((B, P), np.int32)
    for i, p in enumerate(prompts):
      tokens_BxP[i, :len(p)] = p
    cache = nnx.merge(self.graphdef, self.params).init_cache(B, S)
    temperature = jnp.full((B,), params.temperature, jnp.float32)
    top_k = jnp.full((B,), params.top_k, jnp.int32)
    top_p = jnp.full((B,), params.top_p, jnp.float32)
    rng = jax.random.PRNGKey(params.seed)
    rng, key = jax.random.split(rng)
    token_B, logits_BxV, cache = self._prefill(self.params, jnp.asarray(tokens_BxP), jnp.asarray(lengths), cache,
                                               key, temperature, top_k, top_p)
    active = np.ones(B, bool)
    stop = np.asarray(list(params.stop_ids), np.int32)
    position_B = jnp.asarray(lengths)
    no_force = np.full(B, -1, np.int32)
    for step in range(budget):
      token_np = np.asarray(token_B)
      yield token_np, np.asarray(logits_BxV), active.copy()
      active &= ~np.isin(token_np, stop)
      if step == budget - 1 or not active.any():
        return
      forced_B = no_force if force is None else np.asarray(force(token_np, active.copy()), np.int32)
      rng, key = jax.random.split(rng)
      token_B, logits_BxV, cache = self._decode(self.params, token_B, position_B, cache, key, temperature,
                                                top_k, top_p, jnp.asarray(forced_B))
      position_B = position_B + 1

  def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams, include_stop: bool = False
               ) -> list[list[int]]:
    """Completion ids per prompt (without the prompt), cut at the first stop token."""
    out: list[list[int]] = [[] for _ in prompts]
    stop = set(params.stop_ids)
    for tokens, _, active in self.stream(prompts, params):
      for i in np.flatnonzero(active):
        if int(tokens[i]) in stop and not include_stop:
          continue
        out[i].append(int(tokens[i]))
    return out
