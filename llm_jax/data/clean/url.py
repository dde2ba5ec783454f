"""FineWeb step 1: drop pages whose URL is on a blocklist (datatrove's URLFilter, offline).

Uses the blocklists that ship inside the datatrove wheel (UT1 adult domains and URLs, banned words
and sub-words) plus any configured here. tldextract is told to use its bundled public-suffix
snapshot, so nothing is fetched. The integrated lists take ~7 s and ~0.8 GB to load, once, and only
when a document with a URL arrives; this stage runs in the main process so they load only once.
"""

import ml_collections
from datatrove.data import Document

from llm_jax.data.clean import stage as stage_lib


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # drop documents whose metadata url is blocklisted (documents without a URL pass)
  cfg.use_integrated_lists = True  # datatrove's shipped blocklists (UT1 domains/URLs, banned words)
  cfg.soft_word_threshold = 2  # drop a URL holding this many "soft" banned words
  cfg.extra_domains = ()  # more blocked domains, e.g. ('spam.example',)
  cfg.extra_urls = ()  # more blocked full URLs
  cfg.banned_words = ()  # more words that block a URL when they appear as a URL token
  cfg.banned_subwords = ()  # more strings that block a URL when they appear anywhere in it
  cfg.soft_banned_words = ()  # more soft words (see soft_word_threshold)
  return cfg


def _has_url(doc: Document) -> bool:
  return bool(doc.metadata.get("url"))


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  import tldextract  # pylint: disable=g-import-not-at-top
  from datatrove.pipeline.filters import URLFilter  # pylint: disable=g-import-not-at-top
  kwargs = {k: (list(v) or None) if isinstance(v, (list, tuple)) else v
            for k, v in cfg.items() if k != "enabled"}
  step = URLFilter(**kwargs)
  step.tldextractor = tldextract.TLDExtract(suffix_list_urls=())  # bundled snapshot: no network
  return stage_lib.Stage("url", stage_lib.NOT_NONE, stage_lib.filter_apply(step), _has_url)
