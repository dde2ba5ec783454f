"""Cleaning throughput: `bench_cleaning(spec, max_docs)` for `python -m llm_jax.bench data`."""

import time

import ml_collections

from llm_jax.data import sources
from llm_jax.data.clean import config as config_lib
from llm_jax.data.clean import run
from llm_jax.data.clean import stage as stage_lib


def _stage_numbers(s) -> dict:
  mb = (s.input_bytes - s.passed_bytes) / 1e6  # what the stage actually worked on
  return {"mb_applied": round(mb, 3), "seconds": round(s.seconds, 3),
          "mb_per_s_per_core": round(mb / s.seconds, 3) if mb > 0 and s.seconds > 0 else None}


def bench_cleaning(spec: str = "builtin;clean=full", max_docs: int = 500,
                   cfg: ml_collections.ConfigDict | None = None) -> dict:
  """Read `max_docs` documents of `spec`, clean them with `cfg` (default: the default config), and
  return sizes, wall-clock MB/s for reading and for cleaning, and each stage's MB/s per CPU core
  (its input MB over the seconds it ran, summed over workers). `;clean=full` makes every stage run
  on the builtin corpus (its default level skips the language and quality filters)."""
  cfg = cfg or config_lib.default_config()
  start = time.perf_counter()
  docs = list(sources.read_source(spec, max_docs=max_docs))
  read_s = time.perf_counter() - start
  mb_in = sum(map(stage_lib.text_bytes, docs)) / 1e6
  start = time.perf_counter()
  kept, report = run.clean_documents(cfg, docs)
  clean_s = time.perf_counter() - start
  return {
      "spec": spec, "docs": len(docs), "kept_docs": len(kept), "workers": run.num_workers(cfg),
      "mb_in": round(mb_in, 3), "mb_kept": round(sum(map(stage_lib.text_bytes, kept)) / 1e6, 3),
      "read_s": round(read_s, 3), "read_mb_per_s": round(mb_in / max(read_s, 1e-9), 3),
      "clean_s": round(clean_s, 3), "clean_mb_per_s": round(mb_in / max(clean_s, 1e-9), 3),
      "stages": {name: _stage_numbers(s) for name, s in report.items()},
  }
