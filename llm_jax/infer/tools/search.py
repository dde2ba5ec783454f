"""The search tool: ranked BM25 retrieval over passages of a local document collection.

Documents come from a data source spec (`read_source`: `files:notes/*.txt`, `builtin`, ...), are cut
into passages of about `passage_words` words (paragraphs kept whole where they fit), each titled by its
document, and indexed with bm25s (Snowball stemming when PyStemmer is installed). The tool's answer is
the top-k passages, best first, cut to a token budget. `SearchBackend` is the interface a web search
can implement where a network is there.
"""

import abc
import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence

_PARAGRAPH_RE = re.compile(r"\n\s*\n")


@dataclasses.dataclass(frozen=True)
class Passage:
  title: str
  text: str
  source: str = ""  # document id (path, URL)
  score: float = 0.0


class SearchBackend(abc.ABC):
  """Ranked passages for a query (local BM25 here; a web search API elsewhere)."""

  @abc.abstractmethod
  def search(self, query: str, k: int) -> list[Passage]:
    """Up to `k` passages, best first; [] when nothing matches."""


def chunk(text: str, passage_words: int = 120) -> list[str]:
  """Passages of at most `passage_words` words: whole paragraphs packed together, long ones split."""
  pieces = []
  for para in _PARAGRAPH_RE.split(text):
    words = para.split()
    pieces += [" ".join(words[i:i + passage_words]) for i in range(0, len(words), passage_words)]
  out, current = [], []
  for piece in pieces:
    n = len(piece.split())
    if current and sum(len(p.split()) for p in current) + n > passage_words:
      out.append("\n".join(current))
      current = []
    current.append(piece)
  return out + (["\n".join(current)] if current else [])


def title_of(text: str, metadata: dict, doc_id: str) -> tuple[str, str]:
  """(title, body): metadata's title, else a short first line (markdown '#' dropped), else the file name."""
  if metadata.get("title"):
    return str(metadata["title"]), text
  first, _, rest = text.strip().partition("\n")
  if rest.strip() and len(first) <= 100:
    return first.strip().lstrip("#").strip(), rest
  path = metadata.get("path") or metadata.get("url") or doc_id
  return os.path.splitext(os.path.basename(str(path).rstrip("/")))[0] or str(path), text


def _stemmer():
  try:
    import Stemmer  # pylint: disable=g-import-not-at-top  (PyStemmer, optional)
    return Stemmer.Stemmer("english")
  except ImportError:
    return None


class BM25Backend(SearchBackend):
  """BM25 (bm25s) over passages; `from_source(spec)` builds one from a data source spec."""

  def __init__(self, passages: Sequence[Passage]):
    import bm25s  # pylint: disable=g-import-not-at-top
    from bm25s.tokenization import Tokenizer  # pylint: disable=g-import-not-at-top
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at INFO
    if not passages:
      raise ValueError("the search collection is empty: no passages to index")
    self.passages = list(passages)
    self._tokenizer = Tokenizer(stopwords="en", stemmer=_stemmer())
    corpus = self._tokenizer.tokenize([f"{p.title}\n{p.text}" for p in self.passages], return_as="tuple",
                                      show_progress=False)
    self._index = bm25s.BM25()
    self._index.index(corpus, show_progress=False)

  @classmethod
  def from_documents(cls, docs: Iterable, passage_words: int = 120) -> "BM25Backend":
    """From datatrove Documents (or anything with .text, .id, .metadata)."""
    passages = []
    for doc in docs:
      text = doc.text
      if doc.metadata.get("format") == "html":
        import trafilatura  # pylint: disable=g-import-not-at-top
        text = trafilatura.extract(text, favor_precision=True) or ""
      title, body = title_of(text, doc.metadata, doc.id)
      passages += [Passage(title, p, doc.id) for p in chunk(body, passage_words) if p.strip()]
    return cls(passages)

  @classmethod
  def from_source(cls, spec: str, passage_words: int = 120, max_docs: int | None = None) -> "BM25Backend":
    from llm_jax.data.sources import read_source  # pylint: disable=g-import-not-at-top
    return cls.from_documents(read_source(spec, max_docs=max_docs), passage_words)

  def search(self, query: str, k: int) -> list[Passage]:
    ids = self._tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)
    k = min(k, len(self.passages))
    docs_QxK, scores_QxK = self._index.retrieve(ids, k=k, show_progress=False, backend_selection="numpy")
    return [dataclasses.replace(self.passages[int(i)], score=float(s))
            for i, s in zip(docs_QxK[0], scores_QxK[0]) if s > 0]


class SearchTool:
  """`tool(query) -> text`: the top-k passages as '[1] title\\ntext' blocks within `max_tokens`."""

  def __init__(self, backend: SearchBackend, k: int = 3, max_tokens: int = 256,
               count_tokens: Callable[[str], int] | None = None):
    self.backend, self.k, self.max_tokens = backend, k, max_tokens
    self.count_tokens = count_tokens or (lambda s: (len(s.encode("utf-8")) + 3) // 4)  # ~4 bytes a token

  def __call__(self, query: str) -> str:
    query = query.strip()
    if not query:
      return "Error: empty search query"
    try:
      passages = self.backend.search(query, self.k)
    except Exception as e:  # pylint: disable=broad-except  (a failing backend is an answer, not a crash)
      return f"Error: search failed: {type(e).__name__}: {e}"[:300]
    if not passages:
      return "No results."
    blocks = []
    for i, p in enumerate(passages):
      block = f"[{i + 1}] {p.title}\n{p.text}"
      room = self.max_tokens - self.count_tokens("\n\n".join(blocks + [block]))
      if room >= 0:
        blocks.append(block)
        continue
      words = block.split(" ")  # cut the last passage that fits partly, at a word
      while words and self.count_tokens("\n\n".join(blocks + [" ".join(words) + " ..."])) > self.max_tokens:
        words = words[:max(1, len(words) * 3 // 4)] if len(words) > 8 else words[:-1]
      if len(words) > 3:
        blocks.append(" ".join(words) + " ...")
      break
    return "\n\n".join(blocks) if blocks else "No results fit the output budget."
