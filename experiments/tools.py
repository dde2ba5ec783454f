"""Tool use: base model + SFT mixture + tool-use conversations -> sft_tools -> eval (tools off vs on)
-> samples -> report.

The tool-use share of the data is `tools.mixture_weight`; tool outputs are masked out of the loss by the
render. The evaluation answers the same held-out counting, spelling, large-number arithmetic and search
questions with the plain engine and with the engine running the python sandbox and BM25 search.
"""

import numpy as np

from llm_jax import config as config_lib
from llm_jax import stages as stages_lib
from llm_jax.data import conversations
from llm_jax.eval.report import write_report
from llm_jax.eval.run import run_eval
from llm_jax.eval.tools import run_tool_eval
from llm_jax.posttrain.prerequisites import require_stage
from llm_jax.posttrain.samples import write_chat_samples
from llm_jax.posttrain.sft import finetune
from llm_jax.tasks.tool_use import ToolUse
from llm_jax.tokenizer import load_tokenizer

STAGES = ("sft", "eval", "tools_eval", "samples", "report")


def mixed_conversations(config, split: str, total: int) -> list:
  """`total` conversations: the SFT mixture plus a `tools.mixture_weight` share of tool-use ones, shuffled."""
  n_tools = int(round(total * config.tools.mixture_weight))
  base, report = conversations.mixture(config.sft.mixture, total - n_tools, split, seed=config.seed,
                                       task_cfg=config.tasks, val_fraction=config.sft.val_fraction)
  task = ToolUse(config.seed, config.tasks.test_fraction, **config.tasks.tool_use.to_dict())
  out = base + task.conversations(split, n_tools)
  print(f"[{config.sft.stage}] {split}: {len(base)} mixture ({report}) + {n_tools} tool-use conversations",
        flush=True)
  order = np.random.default_rng([config.seed, int(split == "train"), 7]).permutation(len(out))
  return [out[i] for i in order]


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  tokenizer = load_tokenizer(require_stage(workdir, config.init.stage))
  config = config_lib.resolve(config, tokenizer)
  stage = config.sft.stage
  if "sft" in todo:
    train = mixed_conversations(config, "train", config.sft.num_conversations)
    val = mixed_conversations(config, "test", config.sft.val_conversations)
    finetune(config, workdir, tokenizer, train, val, init_stage=config.init.stage, stage=stage,
             template=config.sft.template)
  if "eval" in todo:
    run_eval(config, workdir, stage=stage)
  if "tools_eval" in todo:
    run_tool_eval(config, workdir, stage)
  if "samples" in todo:
    for question, reply in write_chat_samples(workdir, stage, config.sample, seed=config.seed):
      print(f"--- user: {question}\n{reply}", flush=True)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
