"""The whole life of a small LLM in one command: text -> tokenizer and token shards -> base model ->
samples -> SFT assistant -> RL against checkable answers -> evaluation -> report.md.

  python -m llm_jax.main --config=configs/nano.py --workdir=runs/nano

Every stage writes one artifact and is skipped (or resumed) when it exists, so the same command continues
an interrupted run; `--config.stages=rl,eval,report` runs a subset (later stages need earlier artifacts).
Stages: data (tokenizer/, data/), pretrain (checkpoints/base), samples (samples/base.txt), sft
(checkpoints/<sft.stage>), rl (checkpoints/<rl.stage>), eval (eval.json: eval/<task>@<stage>/...), report.
"""

import os

from llm_jax import config as config_lib
from llm_jax import stages as stages_lib
from llm_jax.data import conversations
from llm_jax.data.prepare import prepare_data
from llm_jax.eval.compare import evaluate_stages
from llm_jax.eval.report import write_report
from llm_jax.infer.samples import write_samples
from llm_jax.posttrain.config import stage_config
from llm_jax.posttrain.prerequisites import require_stage
from llm_jax.posttrain.rl import run_rl
from llm_jax.posttrain.samples import write_chat_samples
from llm_jax.posttrain.sft import finetune
from llm_jax.tokenizer import load_tokenizer
from llm_jax.train.loop import stage_dir
from llm_jax.train.pretrain import pretrain

STAGES = ("data", "pretrain", "samples", "sft", "rl", "eval", "report")


def trained(workdir: str, stage: str) -> bool:
  return os.path.exists(os.path.join(stage_dir(workdir, stage), "summary.json"))


def sft_stage(config, workdir: str, tokenizer) -> None:
  """Fine-tune the base model on the configured conversation mixture, then ask it the sample questions."""
  sc = config.sft
  if not trained(workdir, sc.stage):
    spec = f"{sc.mixture},files:{sc.jsonl}@{sc.jsonl_weight}" if sc.jsonl else sc.mixture
    common = dict(seed=config.seed, task_cfg=config.tasks, val_fraction=sc.val_fraction)
    train, report = conversations.mixture(spec, sc.num_conversations, "train", **common)
    val, _ = conversations.mixture(spec, sc.val_conversations, "test", **common)
    print(f"[{sc.stage}] mixture {spec!r}: {report}", flush=True)
    finetune(stage_config(config, "sft"), workdir, tokenizer, train, val, init_stage="base", stage=sc.stage,
             template=sc.template)
  else:
    print(f"[{sc.stage}] already trained: skipping", flush=True)
  chat_samples(config, workdir, sc.stage)


def chat_samples(config, workdir: str, stage: str) -> None:
  if not os.path.exists(os.path.join(workdir, "samples", f"{stage}.txt")):
    for question, reply in write_chat_samples(workdir, stage, config.chat_sample, seed=config.seed):
      print(f"--- user: {question}\n{reply}", flush=True)


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  if "data" in todo or "pretrain" in todo:
    data = prepare_data(config.data, config.tokenizer, workdir)  # skipped when already prepared
  else:
    data = {"tokenizer_dir": require_stage(workdir, "base")}
  tokenizer = load_tokenizer(data["tokenizer_dir"])
  config = config_lib.resolve(config, tokenizer)
  if "pretrain" in todo:
    pretrain(config, workdir, data["train_dir"], data["val_dir"], tokenizer)
  if "samples" in todo:
    for prompt, completion in write_samples(workdir, "base", config.sample, seed=config.seed):
      print(f"--- {prompt}{completion}", flush=True)
  if "sft" in todo:
    sft_stage(config, workdir, tokenizer)
  if "rl" in todo:
    require_stage(workdir, config.sft.stage, hint="configs/nano.py")
    # the SFT loop settings ride along into checkpoints/rl/config.json (eval's loss uses their seq_len)
    run_rl(stage_config(config, "sft"), workdir, tokenizer, init_stage=config.sft.stage, stage=config.rl.stage)
    chat_samples(config, workdir, config.rl.stage)
  if "eval" in todo:  # greedy accuracy before and after RL (the RL stage adds sampled pass@k itself)
    evaluate_stages(config, workdir, (config.sft.stage, config.rl.stage))
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
