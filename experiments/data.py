"""The data stages alone: source -> cleaning (per-filter report) -> tokenizer -> shards -> report."""

from llm_jax import stages as stages_lib
from llm_jax.data.prepare import prepare_data
from llm_jax.eval.report import write_report

STAGES = ("data", "report")


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  result = prepare_data(config.data, config.tokenizer, workdir)
  for split, stats in result["stats"].items():
    print(f"[data] {split}: {stats}", flush=True)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
