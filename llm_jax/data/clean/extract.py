"""FineWeb step 2: main-text extraction from HTML pages (datatrove's Trafilatura extractor).

Each page is extracted in datatrove's sandbox process with a timeout, so a pathological page costs
at most `timeout_s` and cannot take the run down. Navigation, footers, ads and comments are left out.
"""

import logging

import ml_collections
from datatrove.data import Document

from llm_jax.data.clean import report as report_lib
from llm_jax.data.clean import stage as stage_lib

_FAILURES = ("timeout", "clean_error", "broken_process")


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # turn HTML pages (metadata format == 'html') into their main text
  cfg.favour_precision = True  # trafilatura: less text, less boilerplate (FineWeb's choice)
  cfg.timeout_s = 5.0  # per page; a slower page is dropped as 'timeout'
  # trafilatura's cross-page dedup of repeated text segments. FineWeb used True; it is off here
  # because its cache makes a page's text depend on which pages were extracted before it.
  cfg.deduplicate = False
  return cfg


def _is_html(doc: Document) -> bool:
  return doc.metadata.get("format") == "html"


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  from datatrove.pipeline.extractors import Trafilatura  # pylint: disable=g-import-not-at-top
  logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # failures are counted, not logged
  step = Trafilatura(favour_precision=cfg.favour_precision, timeout=cfg.timeout_s,
                     deduplicate=cfg.deduplicate)

  def apply(docs: list[Document], report: report_lib.StageReport) -> list[Document]:
    before = stage_lib.step_counts(step)
    kept = list(step.run(iter(docs)))
    delta = stage_lib.counts_delta(step, before)
    failures = {k: delta.get(k, 0) for k in _FAILURES if delta.get(k, 0)}
    report.dropped.update(failures)
    empty = len(docs) - len(kept) - sum(failures.values())
    if empty:
      report.dropped["no_main_text"] += empty
    for doc in kept:
      doc.metadata["format"] = "text"
    return kept

  return stage_lib.Stage("extract", stage_lib.ALL, apply, _is_html)
