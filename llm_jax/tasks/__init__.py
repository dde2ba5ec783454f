"""Tasks behind one Task interface: offline synthetic ones (identity, arithmetic, spelling, countdown) and
GSM8K from the Hugging Face hub (loaded on first use)."""

import ml_collections

from llm_jax.tasks.arithmetic import Arithmetic
from llm_jax.tasks.base import Example, Task, extract_marked, extract_number
from llm_jax.tasks.countdown import Countdown
from llm_jax.tasks.gsm8k import GSM8K
from llm_jax.tasks.identity import Identity, default_facts
from llm_jax.tasks.spelling import Spelling
from llm_jax.tasks.tool_use import ToolUse
from llm_jax.tasks import tool_use

TASKS = {"identity": Identity, "arithmetic": Arithmetic, "spelling": Spelling, "countdown": Countdown,
         "gsm8k": GSM8K, "tool_use": ToolUse}
CHAT_TASKS = ("identity", "arithmetic", "spelling")  # the assistant's everyday tasks (eval's chat_loss)


def default_config() -> ml_collections.ConfigDict:
  """The `tasks` section: options of each synthetic task (the seed is the run's)."""
  c = ml_collections.ConfigDict()
  c.test_fraction = 0.2  # share of keys (questions, problems, words) held out for evaluation
  c.identity = default_facts()  # name, maker, purpose the assistant states about itself
  c.arithmetic = ml_collections.ConfigDict(dict(
      min_steps=2,  # events per word problem, at least
      max_steps=3,  # ... and at most
      max_value=20,  # largest starting number / amount added
      events="add,sub,packs,double,half",  # which events a problem draws from
      answer_first=False,  # True: '#### answer' before the working (tokens-to-think experiment)
      terse_fraction=0.0))  # share of references that are the bare '#### answer', without the working
  c.spelling = ml_collections.ConfigDict(dict(kind="both"))  # "both" | "spell" | "count"
  c.countdown = ml_collections.ConfigDict(dict(
      num_numbers=4,  # numbers given per problem
      max_number=25,  # each in 1..max_number
      max_target=200))  # targets in 1..max_target
  c.tool_use = tool_use.default_config()  # tool-use conversations (python and search calls)
  return c


def make_task(name: str, cfg: ml_collections.ConfigDict | None = None, seed: int = 0) -> Task:
  """The task `name` configured by a `tasks` section (default_config() when None)."""
  if name not in TASKS:
    raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
  cfg = cfg if cfg is not None else default_config()
  if name == "identity":
    return Identity(seed, cfg.test_fraction, facts=cfg.identity)
  options = cfg.get(name) or default_config().get(name)  # configs saved before a task existed lack it
  return TASKS[name](seed, cfg.test_fraction, **(options.to_dict() if options else {}))


__all__ = ["Arithmetic", "CHAT_TASKS", "Countdown", "Example", "GSM8K", "Identity", "Spelling", "Task", "TASKS",
           "default_config", "extract_marked", "extract_number", "make_task"]
