"""Evaluation of one trained stage (configs/eval.py): eval.json, then report.md."""

from llm_jax import stages as stages_lib
from llm_jax.eval.report import write_report
from llm_jax.eval.run import run_eval
from llm_jax.posttrain.prerequisites import require_stage

STAGES = ("eval", "report")


def run(config, workdir: str) -> None:
  todo = stages_lib.selected(config.stages, STAGES)
  stage = config.eval.stage
  require_stage(workdir, stage, hint="configs/nano.py" if stage == "base" else "configs/sft.py")
  if "eval" in todo:
    run_eval(config, workdir)
  if "report" in todo:
    print(f"report: {write_report(workdir)}", flush=True)
