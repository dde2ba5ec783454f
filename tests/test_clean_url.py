"""URL blocklist filtering (datatrove's URLFilter, offline). The integrated lists take a few
seconds and ~0.8 GB to load; one test uses them."""

from datatrove.data import Document

from llm_jax.data import clean

TEXT = "A page about the weather in the mountains and the valleys below them."


def _config(**url):
  cfg = clean.default_config()
  cfg.num_workers, cfg.progress = 0, False
  for name in clean.STAGES:
    cfg[name].enabled = name == "url"
  cfg.url.update(url)
  return cfg


def _docs(*urls):
  return [Document(text=f"{TEXT} {i}", id=f"d{i}", metadata={"url": u} if u else {})
          for i, u in enumerate(urls)]


def test_configured_domains_words_and_urls_are_blocked_offline():
  cfg = _config(use_integrated_lists=False, extra_domains=("spamsite.com",),
                extra_urls=("https://ok.example/bad-page",), banned_words=("casino",))
  docs = _docs("https://news.example/weather", "https://shop.spamsite.com/a", "https://spamsite.com/",
               "https://ok.example/bad-page", "https://ok.example/casino/games", None)
  kept, report = clean.clean_documents(cfg, docs)
  assert [d.id for d in kept] == ["d0", "d5"]
  assert report["url"].dropped == {"domain": 2, "url": 1, "hard_blacklisted": 1}
  assert report["url"].passed == 1  # no URL: nothing to check


def test_integrated_blocklists_ship_with_datatrove():
  docs = _docs("https://docs.python.org/3/", "https://www.pornhub.com/view", "https://xxx-videos.example/")
  kept, report = clean.clean_documents(_config(), docs)
  assert [d.id for d in kept] == ["d0"]
  assert report["url"].dropped["domain"] == 1 and sum(report["url"].dropped.values()) == 2


def test_light_sources_are_checked_and_none_are_not():
  cfg = _config(use_integrated_lists=False, extra_domains=("spamsite.com",))
  docs = _docs("https://spamsite.com/1", "https://spamsite.com/2")
  docs[0].metadata["clean"], docs[1].metadata["clean"] = "light", "none"
  kept, _ = clean.clean_documents(cfg, docs)
  assert [d.id for d in kept] == ["d1"]
