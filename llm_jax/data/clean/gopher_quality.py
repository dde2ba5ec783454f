"""FineWeb step 5: Gopher quality rules (datatrove's GopherQualityFilter): word counts, word
lengths, symbol and bullet ratios, alphabetic words, stop words."""

import ml_collections

from llm_jax.data.clean import stage as stage_lib


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # drop documents that fail Gopher's quality heuristics
  cfg.min_doc_words = 50  # fewer words than this: too short
  cfg.max_doc_words = 100_000  # more words than this: too long
  cfg.min_avg_word_length = 3  # mean word length range, in characters
  cfg.max_avg_word_length = 10
  cfg.max_symbol_word_ratio = 0.1  # max ('#' or '...') per word
  cfg.max_bullet_lines_ratio = 0.9  # max share of lines starting with a bullet
  cfg.max_ellipsis_lines_ratio = 0.3  # max share of lines ending with an ellipsis
  cfg.max_non_alpha_words_ratio = 0.8  # min share of words holding a letter (the name is datatrove's)
  cfg.min_stop_words = 2  # min distinct stop words (the, be, to, of, and, that, have, with)
  return cfg


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  from datatrove.pipeline.filters import GopherQualityFilter  # pylint: disable=g-import-not-at-top
  step = GopherQualityFilter(**stage_lib.config_kwargs(cfg))
  return stage_lib.Stage("gopher_quality", stage_lib.FULL, stage_lib.filter_apply(step))
