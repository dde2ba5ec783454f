"""A per-document cleaning stage: which documents it applies to, and a function that keeps some."""

import dataclasses
import time
from collections.abc import Callable

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result

from llm_jax.data.clean.report import StageReport

FULL = ("full",)  # quality and language filters: only sources cleaned in full
NOT_NONE = ("full", "light")  # URL filter, dedup, PII: every source except clean=none
ALL = ("full", "light", "none")  # HTML extraction: every HTML page

Apply = Callable[[list[Document], StageReport], list[Document]]


def _always(doc: Document) -> bool:
  del doc
  return True


@dataclasses.dataclass(frozen=True)
class Stage:
  """`apply(docs, report)` returns the documents it keeps (the same objects, maybe edited) and
  records why it dropped the others in `report.dropped`."""
  name: str
  levels: tuple[str, ...]
  apply: Apply
  applies_to: Callable[[Document], bool] = _always


def text_bytes(doc: Document) -> int:
  return len(doc.text.encode("utf-8", "surrogatepass"))


def run_stage(stage: Stage, docs: list[Document]) -> tuple[list[Document], StageReport]:
  """Run `stage` on the documents it applies to; the others pass through. Order is kept."""
  todo = [d for d in docs if d.metadata.get("clean", "full") in stage.levels and stage.applies_to(d)]
  todo_ids = {id(d) for d in todo}
  report = StageReport(input=len(docs), passed=len(docs) - len(todo))
  report.input_bytes = sum(map(text_bytes, docs))
  report.passed_bytes = sum(text_bytes(d) for d in docs if id(d) not in todo_ids)
  start = time.perf_counter()
  kept = stage.apply(todo, report) if todo else []
  report.seconds = time.perf_counter() - start
  kept_ids = {id(d) for d in kept}
  out = [d for d in docs if id(d) in kept_ids or id(d) not in todo_ids]
  report.kept = len(out)
  report.kept_bytes = sum(map(text_bytes, out))
  return out, report


def step_counts(step: PipelineStep) -> dict[str, float]:
  """Snapshot of a datatrove step's own counters (e.g. C4's removed-line counts)."""
  return {name: stat.total for name, stat in step.stats.stats.items()}


def counts_delta(step: PipelineStep, before: dict[str, float]) -> dict[str, int]:
  return {k: int(v - before.get(k, 0)) for k, v in step_counts(step).items() if v != before.get(k, 0)}


def filter_apply(step: BaseFilter, line_notes: bool = False) -> Apply:
  """An `apply` that keeps what a datatrove filter keeps, with its drop reasons. A filter that
  raises on a document drops it as `error_<Exception>` instead of stopping the run. With
  `line_notes`, the filter's line-level counters go into `report.notes`."""

  def apply(docs: list[Document], report: StageReport) -> list[Document]:
    before = step_counts(step) if line_notes else {}
    kept = []
    for doc in docs:
      try:
        keep, reason = get_filter_result(step.filter(doc))
      except Exception as e:  # pylint: disable=broad-except
        keep, reason = False, f"error_{type(e).__name__}"
      if keep:
        kept.append(doc)
      else:
        report.dropped[reason or "dropped"] += 1
    if line_notes:
      report.notes.update(counts_delta(step, before))
    return kept

  return apply


def config_kwargs(cfg, exclude: tuple[str, ...] = ("enabled",)) -> dict:
  """A stage config as keyword arguments for its datatrove class (tuples stay tuples)."""
  out = {}
  for key, value in cfg.items():
    if key in exclude:
      continue
    out[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value) \
        if isinstance(value, (list, tuple)) else value
  return out
