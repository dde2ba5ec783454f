"""Offline synthetic tasks (identity, arithmetic, spelling) behind one Task interface."""

import ml_collections

from llm_jax.tasks.arithmetic import Arithmetic
from llm_jax.tasks.base import Example, Task, extract_marked, extract_number
from llm_jax.tasks.identity import Identity, default_facts
from llm_jax.tasks.spelling import Spelling

TASKS = {"identity": Identity, "arithmetic": Arithmetic, "spelling": Spelling}


def default_config() -> ml_collections.ConfigDict:
  """The `tasks` section: options of each synthetic task (the seed is the run's)."""
  c = ml_collections.ConfigDict()
  c.test_fraction = 0.2  # share of keys (questions, problems, words) held out for evaluation
  c.identity = default_facts()  # name, maker, purpose the assistant states about itself
  c.arithmetic = ml_collections.ConfigDict(dict(
      min_steps=2,  # events per word problem, at least
      max_steps=3,  # ... and at most
      max_value=20,  # largest starting number / amount added
      answer_first=False))  # True: '#### answer' before the working (tokens-to-think experiment)
  c.spelling = ml_collections.ConfigDict(dict(kind="both"))  # "both" | "spell" | "count"
  return c


def make_task(name: str, cfg: ml_collections.ConfigDict | None = None, seed: int = 0) -> Task:
  """The task `name` configured by a `tasks` section (default_config() when None)."""
  if name not in TASKS:
    raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
  cfg = cfg if cfg is not None else default_config()
  if name == "identity":
    return Identity(seed, cfg.test_fraction, facts=cfg.identity)
  return TASKS[name](seed, cfg.test_fraction, **cfg[name].to_dict())


__all__ = ["Arithmetic", "Example", "Identity", "Spelling", "Task", "TASKS", "default_config", "extract_marked",
           "extract_number", "make_task"]
