"""Sampling many replies with the Engine in fixed-size batches (one compile whatever the count)."""

import dataclasses
from collections.abc import Sequence

from llm_jax.infer.engine import Engine, SamplingParams


def generate_padded(engine: Engine, prompts: Sequence[Sequence[int]], params: SamplingParams, batch_size: int,
                    include_stop: bool = False) -> list[list[int]]:
  """Completion ids per prompt, generated `batch_size` at a time (the last batch padded with copies of
  its first prompt, whose replies are dropped); batch b samples with seed params.seed + b."""
  out = []
  for b, start in enumerate(range(0, len(prompts), batch_size)):
    chunk = list(prompts[start:start + batch_size])
    real = len(chunk)
    chunk += [chunk[0]] * (batch_size - real)
    out += engine.generate(chunk, dataclasses.replace(params, seed=params.seed + b), include_stop=include_stop)[:real]
  return out
