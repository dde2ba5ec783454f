"""Pretraining: clean text -> tokenizer -> token shards -> base model -> samples -> report.

Each stage writes its artifact into the workdir and is skipped when that artifact exists, so running the
same command again resumes where it stopped. Fork this file to compose stages differently.
"""

from llm_jax import config as config_lib
from llm_jax import stages as stages_lib
from llm_jax.data.prepare import prepare_data
from llm_jax.eval.report import write_report
from llm_jax.infer.samples import write_samples
from llm_jax.tokenizer import load_tokenizer
from llm_jax.train.pretrain import pretrain

STAGES = ("data", "pretrain", "samples", "report")


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  data = prepare_data(config.data, config.tokenizer, workdir)  # skipped when already prepared
  tokenizer = load_tokenizer(data["tokenizer_dir"])
  config = config_lib.resolve(config, tokenizer)
  if "pretrain" in todo:
    pretrain(config, workdir, data["train_dir"], data["val_dir"], tokenizer)
  if "samples" in todo:
    for prompt, completion in write_samples(workdir, "base", config.sample, seed=config.seed):
      print(f"--- {prompt}{completion}", flush=True)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
