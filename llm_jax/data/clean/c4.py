"""FineWeb step 6: C4 rules (datatrove's C4QualityFilter). Line level: drop lines with too few words,
overlong words, 'javascript', cookie/terms-of-use notices, citation marks. Document level: drop pages
with 'lorem ipsum', a curly bracket, or too few sentences left. FineWeb keeps lines without terminal
punctuation (filter_no_terminal_punct=False); removed-line counts go to the report's notes."""

import ml_collections

from llm_jax.data.clean import stage as stage_lib


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # C4's line and document rules
  cfg.split_paragraph = True  # apply line rules to lines ('\n'); False: to sentences
  cfg.remove_citations = True  # strip wikipedia-style [1], [edit], [citation needed]
  cfg.filter_no_terminal_punct = False  # drop lines not ending in . ! ? " ' (C4: True, FineWeb: False)
  cfg.min_num_sentences = 5  # drop documents with fewer sentences left; -1 disables
  cfg.min_words_per_line = 3  # drop lines with fewer words; -1 disables
  cfg.max_word_length = 1000  # drop lines holding a longer word; -1 disables
  cfg.filter_lorem_ipsum = True  # drop documents containing 'lorem ipsum'
  cfg.filter_javascript = True  # drop lines mentioning 'javascript'
  cfg.filter_curly_bracket = True  # drop documents containing '{'
  cfg.filter_policy = True  # drop lines with 'terms of use', 'privacy policy', cookie notices
  return cfg


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  from datatrove.pipeline.filters import C4QualityFilter  # pylint: disable=g-import-not-at-top
  step = C4QualityFilter(**stage_lib.config_kwargs(cfg))
  return stage_lib.Stage("c4", stage_lib.FULL, stage_lib.filter_apply(step, line_notes=True))
