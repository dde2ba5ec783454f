"""Fine-tuning: base model + conversation mixture -> sft model -> eval -> samples -> report.

Needs the tokenizer and base model of configs/nano.py in the same workdir. Each stage is skipped or
resumed when its artifact exists, like pretraining.
"""

import json
import os

from llm_jax import config as config_lib
from llm_jax import stages as stages_lib
from llm_jax.data import conversations
from llm_jax.eval.report import write_report
from llm_jax.eval.run import run_eval
from llm_jax.posttrain.prerequisites import require_stage
from llm_jax.posttrain.samples import write_chat_samples
from llm_jax.posttrain.sft import finetune, start_from_hf
from llm_jax.tokenizer.chat import resolve_template
from llm_jax.tokenizer import load_tokenizer

STAGES = ("sft", "eval", "samples", "report")


def mixture_spec(sft_cfg) -> str:
  spec = sft_cfg.mixture
  return f"{spec},files:{sft_cfg.jsonl}@{sft_cfg.jsonl_weight}" if sft_cfg.jsonl else spec


def load_conversations(config, workdir: str) -> tuple[list, list]:
  """Train and held-out conversations of the configured mixture; the mixture report is printed and
  written to workdir/data/<stage>_mixture.json."""
  sc, spec = config.sft, mixture_spec(config.sft)
  common = dict(seed=config.seed, task_cfg=config.tasks, val_fraction=sc.val_fraction)
  train, report = conversations.mixture(spec, sc.num_conversations, "train", **common)
  val, val_report = conversations.mixture(spec, sc.val_conversations, "test", **common)
  os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
  with open(os.path.join(workdir, "data", f"{sc.stage}_mixture.json"), "w") as f:
    json.dump({"train": report, "val": val_report}, f, indent=1)
  print(f"[{sc.stage}] mixture {spec!r}: {report}", flush=True)
  return train, val


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  initial_params = None
  if config.init.hf:  # an imported Hugging Face model (GPT-2 / Llama folder or hub name)
    config, tokenizer, initial_params = start_from_hf(config, workdir)
  else:
    tokenizer = load_tokenizer(require_stage(workdir, config.init.stage))
    config = config_lib.resolve(config, tokenizer)
  template = resolve_template(tokenizer, config.sft.template)
  stage = config.sft.stage
  if "sft" in todo:
    train, val = load_conversations(config, workdir)
    finetune(config, workdir, tokenizer, train, val, init_stage=config.init.stage, stage=stage,
             template=template, initial_params=initial_params)
  if "eval" in todo:
    run_eval(config, workdir, stage=stage)
  if "samples" in todo:
    for question, reply in write_chat_samples(workdir, stage, config.sample, seed=config.seed):
      print(f"--- user: {question}\n{reply}", flush=True)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
