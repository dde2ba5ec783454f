"""The search tool: BM25 over passages of a local collection named by a source spec, titled, top-k,
within a token budget; and make_tools, which the chat CLI and the experiments use."""

import importlib.util

import pytest

from llm_jax.infer.tools import make_tools
from llm_jax.infer.tools.search import BM25Backend, Passage, SearchBackend, SearchTool, chunk, title_of

NOTES = {
    "jax.txt": "JAX\nJAX transforms numerical functions: jit compiles them with XLA, grad differentiates them, "
               "and vmap vectorizes them over a batch axis.",
    "tea.md": "# Green tea\nGreen tea is brewed at about 80 degrees Celsius for two to three minutes.\n\n"
              "Boiling water makes it bitter.",
    "rivers.txt": "Long rivers\nThe Nile is about 6650 km long. The Amazon carries the most water of any river.",
    "cats.txt": "Cats\nCats sleep for twelve to sixteen hours a day and hunt at dawn and dusk.",
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
  root = tmp_path_factory.mktemp("notes")
  for name, text in NOTES.items():
    (root / name).write_text(text)
  return f"files:{root}/*;clean=none"


def test_search_finds_the_passage_that_answers(spec):
  backend = BM25Backend.from_source(spec)
  hits = backend.search("how hot should the water be for green tea", k=2)
  assert hits[0].title == "Green tea" and "80 degrees" in hits[0].text
  assert backend.search("what does vmap do", k=1)[0].title == "JAX"
  assert backend.search("how many hours do cats sleep", k=1)[0].title == "Cats"
  if importlib.util.find_spec("Stemmer"):  # with PyStemmer: cat ~ cats, sleeping ~ sleep
    assert backend.search("cat sleeping", k=1)[0].title == "Cats"
  assert backend.search("zzzz qqqq", k=3) == []


def test_tool_output_is_titled_ranked_and_budgeted(spec):
  tool = SearchTool(BM25Backend.from_source(spec), k=3, max_tokens=1000)
  text = tool("How long is the Nile river?")
  assert text.startswith("[1] Long rivers\nThe Nile is about 6650 km long.")
  short = SearchTool(BM25Backend.from_source(spec), k=3, max_tokens=12)("How long is the Nile river?")
  assert len(short.encode()) <= 4 * 12 and short.startswith("[1] Long rivers") and short.endswith("...")
  assert tool("   ") == "Error: empty search query" and tool("zzzz") == "No results."


def test_a_failing_backend_is_an_answer_not_a_crash():
  class Offline(SearchBackend):
    def search(self, query, k):
      raise ConnectionError("no network")

  assert SearchTool(Offline())("anything") == "Error: search failed: ConnectionError: no network"


def test_chunks_and_titles():
  text = "\n\n".join(" ".join(f"w{i}" for i in range(n)) for n in (50, 50, 300))
  pieces = chunk(text, passage_words=120)
  assert [len(p.split()) for p in pieces] == [100, 120, 120, 60]
  assert title_of("# Title\nbody", {}, "id") == ("Title", "body")
  assert title_of("one long line only", {"path": "/x/notes/pasta.txt"}, "id") == ("pasta", "one long line only")
  assert BM25Backend([Passage("t", "hello world")]).search("hello", 5)[0].text == "hello world"
  with pytest.raises(ValueError, match="empty"):
    BM25Backend([])


def test_make_tools(spec):
  tools = make_tools("python, search", spec)
  assert set(tools) == {"python", "search"}
  assert tools["python"]("6 * 7") == "42" and "[1] JAX" in tools["search"]("jit and grad")
  with pytest.raises(ValueError, match="unknown tool"):
    make_tools("shell")
  with pytest.raises(ValueError, match="needs a corpus"):
    make_tools("search")
