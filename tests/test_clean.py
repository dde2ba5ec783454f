"""Cleaning stages, each on small documents written here: extraction, language ID, Gopher, C4,
FineWeb, exact and near dedup, PII."""

from datatrove.data import Document

from llm_jax.data import clean

ARTICLES = [
    "The old lighthouse stood at the edge of the cliff for more than two hundred years.\n"
    "Sailors who passed the rocky coast at night looked for its steady beam and knew where they were.\n"
    "In the early days a keeper climbed the narrow stairs every evening to light the great lamp.\n"
    "He trimmed the wick, polished the brass, and wrote the weather in a thick leather book.\n"
    "When electric lights arrived, the keeper left, and the tower was run by a machine instead.\n"
    "Today the building is a small museum, and children can visit the room where the lamp once burned.",
    "Bread is one of the oldest foods that people have learned to make with their own hands.\n"
    "Flour, water, salt and a little yeast are enough to bake a simple loaf at home.\n"
    "The dough must rest for several hours so that the yeast can fill it with tiny bubbles of gas.\n"
    "A baker folds the dough gently, shapes it into a round, and lets it rise a second time.\n"
    "A hot oven gives the crust its colour, while the inside stays soft and full of holes.\n"
    "Many families still keep a jar of sour starter that has been fed for years.",
    "Honey bees live together in large colonies that can hold tens of thousands of workers.\n"
    "Each bee has a job, and the jobs change as the insect grows older during the summer.\n"
    "Young bees clean the cells and feed the larvae, while older ones fly out to find flowers.\n"
    "A returning forager dances on the comb to show the others where the best food is found.\n"
    "The angle of the dance points toward the flowers, and its length tells how far away they are.\n"
    "In autumn the colony stores honey so that it can survive the cold months of winter.",
]
FRENCH = ("Le vieux phare se dressait au bord de la falaise depuis plus de deux cents ans. Les marins "
          "qui passaient la nuit le long de la côte rocheuse cherchaient son faisceau régulier. "
          "Aujourd'hui le bâtiment est un petit musée que les enfants aiment beaucoup visiter.")
GERMAN = ("Der alte Leuchtturm stand seit mehr als zweihundert Jahren am Rand der Klippe. Seeleute, "
          "die nachts an der felsigen Küste vorbeifuhren, suchten seinen ruhigen Strahl. Heute ist "
          "das Gebäude ein kleines Museum, das Kinder sehr gerne besuchen.")


def doc(text: str, i: int = 0, **metadata) -> Document:
  return Document(text=text, id=f"doc{i}", metadata={"clean": "full", **metadata})


def only(*stages: str, **overrides):
  """Default config with just `stages` enabled, run in this process."""
  cfg = clean.default_config()
  cfg.num_workers, cfg.progress = 0, False
  for name in clean.STAGES:
    cfg[name].enabled = name in stages
  for key, value in overrides.items():
    stage, field = key.split("__")
    cfg[stage][field] = value
  return cfg


def run(cfg, docs):
  kept, report = clean.clean_documents(cfg, docs)
  for s in report.values():  # every document is accounted for
    assert s.input == s.kept + sum(s.dropped.values())
  return kept, report


def test_the_articles_pass_every_stage():
  kept, report = run(only(*clean.STAGES), [doc(t, i) for i, t in enumerate(ARTICLES)])
  assert [d.text for d in kept] == ARTICLES, {k: dict(v.dropped) for k, v in report.items()}


def test_html_extraction_keeps_the_article_not_the_boilerplate():
  body = "".join(f"<p>{line}</p>\n" for line in ARTICLES[0].splitlines())
  page = f"""<html><head><title>Lighthouse</title></head><body>
    <nav><ul><li><a href="/">Home</a></li><li><a href="/shop">Shop</a></li>
    <li><a href="/login">Log in to your account</a></li></ul></nav>
    <div class="sidebar ads"><a href="/ad">Buy cheap sunglasses now, ninety percent off today only!</a></div>
    <article><h1>The old lighthouse</h1>{body}</article>
    <footer><p>Copyright 2024 Coastal Weekly. All rights reserved.</p>
    <a href="/privacy">Privacy policy</a> <a href="/terms">Terms of use</a></footer>
    </body></html>"""
  empty = "<html><body><div><img src='banner.png'></div></body></html>"
  docs = [doc(page, 0, format="html"), doc(empty, 1, format="html"), doc(ARTICLES[1], 2)]
  kept, report = run(only("extract"), docs)
  assert [d.id for d in kept] == ["doc0", "doc2"]
  text = kept[0].text
  assert "keeper climbed the narrow stairs" in text and "children can visit" in text
  for junk in ("Log in", "sunglasses", "Copyright", "Privacy policy", "Shop"):
    assert junk not in text
  assert kept[0].metadata["format"] == "text" and kept[1].text == ARTICLES[1]
  assert report["extract"].passed == 1 and report["extract"].dropped == {"no_main_text": 1}


def test_language_id_drops_other_languages():
  docs = [doc(ARTICLES[0], 0), doc(FRENCH, 1), doc(GERMAN, 2), doc("zzkq xvvt pplm", 3)]
  kept, report = run(only("language"), docs)
  assert [d.id for d in kept] == ["doc0"]
  assert kept[0].metadata["language"] == "en" and kept[0].metadata["language_score"] > 0.65
  dropped = report["language"].dropped
  assert dropped["lang_fr"] == 1 and dropped["lang_de"] == 1 and sum(dropped.values()) == 3
  kept, _ = run(only("language", language__languages=("fr",)), docs)
  assert [d.id for d in kept] == ["doc1"]


def test_gopher_repetition_drops_spam():
  spam = "Buy cheap watches now at the best price online!\n" * 30 + ARTICLES[1]
  kept, report = run(only("gopher_repetition"), [doc(ARTICLES[0], 0), doc(spam, 1)])
  assert [d.id for d in kept] == ["doc0"]
  assert report["gopher_repetition"].dropped == {"dup_line_frac": 1}


def test_gopher_quality_drops_short_and_symbol_heavy_documents():
  symbols = " ".join(f"#tag{i} ... {i} ==> ### $$$ %%%" for i in range(40))
  docs = [doc(ARTICLES[2], 0), doc("Too short to be a page.", 1), doc(symbols, 2)]
  kept, report = run(only("gopher_quality"), docs)
  assert [d.id for d in kept] == ["doc0"]
  assert set(report["gopher_quality"].dropped) <= {
      "gopher_short_doc", "gopher_too_many_hashes", "gopher_below_alpha_threshold",
      "gopher_below_avg_threshold", "gopher_enough_stop_words"}
  assert report["gopher_quality"].dropped["gopher_short_doc"] == 1


def test_c4_removes_junk_lines_and_drops_code_pages():
  junk = ["Share", "Menu", "Please enable JavaScript to view the comments.",
          "This site uses cookies to improve your experience.", "Read more"]
  lines = ARTICLES[0].splitlines()
  mixed = "\n".join(lines[:3] + junk + lines[3:])
  code = ARTICLES[1] + "\nint main() { return 0; }"
  kept, report = run(only("c4"), [doc(mixed, 0), doc(code, 1), doc("One line only. Two.", 2)])
  assert [d.id for d in kept] == ["doc0"]
  assert kept[0].text == ARTICLES[0]  # the article's lines, in order, without the junk
  assert report["c4"].dropped == {"curly_bracket": 1, "too_few_sentences": 1}
  notes = report["c4"].notes
  assert notes["line-filter-too_few_words"] >= 3 and notes["line-filter-javascript"] == 1
  assert notes["line-filter-policy"] == 1


def test_fineweb_rules_drop_list_like_pages():
  listing = "\n".join(f"Item number {i}." for i in range(60)) + "\n" + ARTICLES[2]
  no_punct = "\n".join(line.rstrip(".") + " and more words here" for line in ARTICLES[1].splitlines())
  kept, report = run(only("fineweb"), [doc(ARTICLES[0], 0), doc(listing, 1), doc(no_punct, 2)])
  assert [d.id for d in kept] == ["doc0"]
  assert report["fineweb"].dropped == {"short_line_ratio": 1, "line_punct_ratio": 1}


def test_exact_and_near_duplicates_are_removed():
  near = ARTICLES[0].replace("two hundred", "three hundred")
  shouty = "  " + ARTICLES[1].upper().replace(".", "!") + "  "  # same text once normalised
  docs = [doc(ARTICLES[0], 0), doc(ARTICLES[1], 1), doc(near, 2), doc(shouty, 3), doc(ARTICLES[2], 4),
          doc(ARTICLES[1], 5)]
  kept, report = run(only("exact_dedup", "minhash_dedup"), docs)
  assert [d.id for d in kept] == ["doc0", "doc1", "doc4"]
  assert report["exact_dedup"].dropped == {"exact_duplicate": 2}
  assert report["minhash_dedup"].dropped == {"near_duplicate": 1}
  assert not any(k.startswith("_") for d in kept for k in d.metadata)
  kept, _ = run(only("minhash_dedup", minhash_dedup__threshold=0.95), docs[:3])
  assert len(kept) == 3  # a strict threshold keeps the edited copy


def test_pii_scrubs_emails_and_public_ips():
  text = ("Write to jane.doe@mail.example.org or call the office. The server at 8.8.4.4 answered, "
          "and the router at 192.168.1.1 stayed private.")
  kept, report = run(only("pii"), [doc(text), doc(ARTICLES[0], 1)])
  assert "jane.doe" not in kept[0].text and "8.8.4.4" not in kept[0].text
  assert "@example" in kept[0].text and "192.168.1.1" in kept[0].text
  assert kept[1].text == ARTICLES[0] and report["pii"].notes == {"docs_scrubbed": 1}
