"""Running the cleaning: worker processes give the same output as one process, clean levels,
failing filters, the report, and the builtin corpus keeping most of its text."""

import collections

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter

from llm_jax.data import clean, sources
from llm_jax.data.clean import report as report_lib
from llm_jax.data.clean import stage as stage_lib

SENTENCE = "The keeper climbed the narrow stairs every evening to light the great lamp. "


TOPICS = ["river", "forest", "harbour", "village", "castle", "garden", "market", "bridge", "island",
          "valley", "library", "station", "meadow", "tower", "orchard", "canal", "quarry", "mill",
          "chapel", "farm", "lake", "school", "bakery", "theatre"]
VERBS = ["grew", "changed", "slept", "flooded", "burned", "waited", "sang", "shone", "fell", "rose",
         "moved", "turned"]


def _docs() -> list[Document]:
  docs = []
  for i, topic in enumerate(TOPICS):
    text = " ".join(f"In the story of the {topic}, the people of the {TOPICS[(i + j) % 24]} {verb} "
                    f"while the {topic} {VERBS[(i + j) % 12]} again." for j, verb in enumerate(VERBS))
    if i % 5 == 0:
      text = f"Bonjour, ceci est une page sur le {topic}, écrite entièrement en français. " * 4
    if i % 7 == 0:
      text = "<html><body><article>" + "".join(f"<p>{SENTENCE} {topic} {v}.</p>" for v in VERBS[:8]) \
          + "</article><footer>Contact admin@site.example</footer></body></html>"
    docs.append(Document(text=text, id=f"d{i}", metadata={
        "clean": "full" if i % 3 else "light", "format": "html" if i % 7 == 0 else "text"}))
  docs.append(Document(text=docs[3].text, id="dup", metadata={"clean": "light"}))
  return docs


def _config(workers: int):
  cfg = clean.default_config()
  cfg.num_workers, cfg.progress, cfg.chunk_docs = workers, False, 4
  return cfg


def test_workers_give_the_same_documents_and_counts_as_one_process():
  kept0, report0 = clean.clean_documents(_config(0), _docs())
  kept2, report2 = clean.clean_documents(_config(2), _docs())
  assert [(d.id, d.text, d.metadata) for d in kept2] == [(d.id, d.text, d.metadata) for d in kept0]
  strip = lambda r: {k: (v.input, v.kept, dict(v.dropped)) for k, v in r.items()}  # no timings
  assert strip(report2) == strip(report0)
  assert report0["exact_dedup"].dropped == {"exact_duplicate": 1}
  assert report0["language"].dropped["lang_fr"] >= 1
  assert report0["extract"].input - report0["extract"].passed == 4  # the HTML pages


def test_clean_levels_choose_the_stages():
  french = "Bonjour, ceci est une page écrite entièrement en français pour le test. " * 4
  docs = [Document(text=french + "mail a@b.example", id=level, metadata={"clean": level})
          for level in ("full", "light", "none")]
  docs.append(Document(text=docs[1].text, id="light2", metadata={"clean": "light"}))
  docs.append(Document(text=docs[2].text, id="none2", metadata={"clean": "none"}))
  kept, report = clean.clean_documents(_config(0), docs)
  assert [d.id for d in kept] == ["light", "none", "none2"]  # full: not English; light2: a dup
  assert "a@b.example" not in kept[0].text and "a@b.example" in kept[1].text  # PII skips none
  assert report["language"].passed == 4 and report["exact_dedup"].passed == 2


def test_a_failing_filter_drops_the_document_not_the_run():

  class Fragile(BaseFilter):
    name = "fragile"

    def filter(self, doc):
      return 1 / len(doc.text.split()) > 0  # ZeroDivisionError on blank text

  stage = stage_lib.Stage("fragile", stage_lib.ALL, stage_lib.filter_apply(Fragile()))
  docs = [Document(text="fine words", id="a"), Document(text="   ", id="b")]
  kept, report = stage_lib.run_stage(stage, docs)
  assert [d.id for d in kept] == ["a"] and report.dropped == {"error_ZeroDivisionError": 1}


def test_report_dict_and_markdown():
  _, report = clean.clean_documents(_config(0), _docs())
  as_dict = clean.report_to_dict(report)
  assert list(as_dict) == list(clean.STAGES)
  assert as_dict["exact_dedup"]["dropped"] == {"exact_duplicate": 1}
  back = report_lib.StageReport.from_dict(as_dict["language"])
  assert back.dropped == report["language"].dropped
  table = clean.markdown_table(report)
  assert table.count("\n") == len(clean.STAGES) + 2 and "| exact_dedup | " in table


def test_builtin_default_recipe_keeps_most_text():
  docs = list(sources.read_source("builtin", max_docs=150))
  before = sum(map(stage_lib.text_bytes, docs))
  kept, report = clean.clean_documents(_config(0), docs)
  after = sum(map(stage_lib.text_bytes, kept))
  assert after > 0.9 * before, {k: dict(v.dropped) for k, v in report.items()}
  kinds = collections.Counter(d.metadata["source"] for d in kept)
  assert kinds["builtin:prose"] > kinds["builtin:code"] > 0


def test_bench_cleaning_reports_throughput():
  numbers = clean.bench_cleaning("builtin;clean=full", max_docs=8, cfg=_config(0))
  assert numbers["docs"] == 8 and numbers["clean_mb_per_s"] > 0
  assert numbers["stages"]["language"]["mb_per_s_per_core"] > 0
