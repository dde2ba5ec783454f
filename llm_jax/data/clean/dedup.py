"""Exact dedup: drop a document whose normalised text (datatrove's simplify_text: lowercase, no
punctuation, collapsed whitespace, no diacritics, digits as 0) hashes like an earlier one's.

A global pass in stream order (the first copy is kept). The hash is computed by the parallel workers
(`add_keys`) and carried in the metadata under a private key that the stage removes.
"""

import hashlib

import ml_collections
from datatrove.data import Document

from llm_jax.data.clean import report as report_lib
from llm_jax.data.clean import stage as stage_lib

KEY = "_exact_key"


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # drop exact duplicates of normalised text (keeps the first)
  return cfg


def text_key(text: str) -> bytes:
  from datatrove.utils.text import simplify_text  # pylint: disable=g-import-not-at-top
  return hashlib.blake2b(simplify_text(text).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def add_keys(docs: list[Document]) -> None:
  """Worker side: store each document's key in its metadata."""
  for doc in docs:
    doc.metadata[KEY] = text_key(doc.text)


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  del cfg
  seen: set[bytes] = set()

  def apply(docs: list[Document], report: report_lib.StageReport) -> list[Document]:
    kept = []
    for doc in docs:
      key = doc.metadata.pop(KEY, None) or text_key(doc.text)
      if key in seen:
        report.dropped["exact_duplicate"] += 1
      else:
        seen.add(key)
        kept.append(doc)
    return kept

  return stage_lib.Stage("exact_dedup", stage_lib.NOT_NONE, apply)
