"""FineWeb step 4: Gopher repetition rules (datatrove's GopherRepetitionFilter): drop documents made
of repeated lines, paragraphs or n-grams (spam, boilerplate lists). Thresholds: Gopher's Table A1."""

import ml_collections

from llm_jax.data.clean import stage as stage_lib


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # drop highly repetitive documents
  cfg.dup_line_frac = 0.3  # max share of lines that repeat an earlier line
  cfg.dup_para_frac = 0.3  # max share of paragraphs that repeat an earlier paragraph
  cfg.dup_line_char_frac = 0.2  # max share of characters in repeated lines
  cfg.dup_para_char_frac = 0.2  # max share of characters in repeated paragraphs
  cfg.top_n_grams = ((2, 0.2), (3, 0.18), (4, 0.16))  # (n, max char share of the top n-gram)
  cfg.dup_n_grams = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))  # (n, max
  # char share covered by repeated n-grams)
  return cfg


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  from datatrove.pipeline.filters import GopherRepetitionFilter  # pylint: disable=g-import-not-at-top
  step = GopherRepetitionFilter(**stage_lib.config_kwargs(cfg))
  return stage_lib.Stage("gopher_repetition", stage_lib.FULL, stage_lib.filter_apply(step))
