"""FineWeb step 7: FineWeb's own quality rules (datatrove's FineWebQualityFilter): share of lines
ending in punctuation, share of short lines, duplicated-line characters, newline-to-word ratio."""

import ml_collections

from llm_jax.data.clean import stage as stage_lib


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # FineWeb's line-based document rules
  cfg.line_punct_thr = 0.12  # min share of lines ending in terminal punctuation
  cfg.line_punct_exclude_zero = False  # True: documents with no such line at all are kept
  cfg.short_line_thr = 0.67  # max share of lines no longer than short_line_length
  cfg.short_line_length = 30  # characters
  cfg.char_duplicates_ratio = 0.01  # max share of characters in duplicated lines
  cfg.new_line_ratio = 0.3  # max newlines per word (list-like pages)
  return cfg


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  from datatrove.pipeline.filters import FineWebQualityFilter  # pylint: disable=g-import-not-at-top
  step = FineWebQualityFilter(**stage_lib.config_kwargs(cfg))
  return stage_lib.Stage("fineweb", stage_lib.FULL, stage_lib.filter_apply(step))
