"""Tool-use conversations that run offline: the assistant calls python or search, reads the output, answers.

Kinds (all with a checkable `#### number` answer, so they serve SFT, evaluation and RL alike):
  count_letter    "How many 'r' are in strawberry?" -> python `'strawberry'.count('r')`
  count_chars     count a character in a long random string (DNA, binary, ...) -> python `s.count('G')`
  big_arithmetic  + - * of numbers of up to `max_digits` digits -> python `48213 * 9127`
  search          a question about a made-up entity of tasks/facts.py -> search, then the number found
The reference reply is a list of content parts (text, python, python_output, search, search_output), so
`render` masks the tool outputs out of the loss; outputs are exactly what the tools return (the python
sandbox prints the last expression; search runs BM25 over the same collection the tool searches).
"""

import dataclasses
import re
import types

import ml_collections
import numpy as np

from llm_jax.tasks import facts as facts_lib
from llm_jax.tasks.base import Example, Task, extract_number
from llm_jax.tasks.spelling import LETTER_QUESTIONS, WORDS

KINDS = ("count_letter", "count_chars", "big_arithmetic", "search")
ALPHABETS = (("DNA", "ACGT"), ("binary", "01"), ("letter", "abc"), ("digit", "0123456789"))
_TOOL_SPANS_RE = re.compile(r"<\|(python|search|output)_start\|>.*?(<\|\1_end\|>|$)", re.S)
_CODE_INTROS = ("Let me count with Python.", "I'll use Python to get this exactly.", "Python can do this exactly.")
_MATH_INTROS = ("Let me compute that with Python.", "I'll calculate it with Python.", "")
_SEARCH_INTROS = ("Let me search for that.", "I'll look it up.", "")


def default_config() -> ml_collections.ConfigDict:
  """The `tasks.tool_use` section."""
  c = ml_collections.ConfigDict()
  c.kinds = ",".join(KINDS)  # which kinds to mix (equal shares)
  c.min_digits, c.max_digits = 4, 12  # operand sizes of big_arithmetic
  c.min_chars, c.max_chars = 30, 120  # string lengths of count_chars
  c.num_entities = 200  # made-up entities of the search collection (tasks/facts.py)
  c.facts_seed = 0  # the collection's seed (independent of the run's)
  c.search_k = 2  # passages the search tool returns
  c.search_tokens = 160  # output budget of the search tool (~4 bytes a token)
  return c


@dataclasses.dataclass(frozen=True)
class ToolExample(Example):
  """An Example whose reference reply is a list of content parts (tool calls and outputs)."""
  parts: tuple[dict, ...] = ()

  @property
  def conversation(self) -> list[dict]:
    return list(self.prompt) + [{"role": "assistant", "content": [dict(p) for p in self.parts]}]


def strip_tools(text: str) -> str:
  """The assistant's prose: decoded text without tool calls and outputs (the reward reads the answer
  the model states, never one a tool printed)."""
  return _TOOL_SPANS_RE.sub("", text)


def _parts(*items: tuple[str, str]) -> tuple[dict, ...]:
  return tuple({"type": kind, "text": text} for kind, text in items if text)


class ToolUse(Task):
  """Tool-use conversations of the configured `kinds` (comma-separated or a sequence)."""

  name = "tool_use"

  def __init__(self, seed: int = 0, test_fraction: float = 0.2, kinds=",".join(KINDS), min_digits: int = 4,
               max_digits: int = 12, min_chars: int = 30, max_chars: int = 120, num_entities: int = 200,
               facts_seed: int = 0, search_k: int = 2, search_tokens: int = 160):
    super().__init__(seed, test_fraction)
    self.kinds = tuple(k.strip() for k in (kinds.split(",") if isinstance(kinds, str) else kinds) if k.strip())
    unknown = set(self.kinds) - set(KINDS)
    if unknown or not self.kinds:
      raise ValueError(f"tool_use kinds {sorted(unknown) or '(none)'} invalid; choose from {', '.join(KINDS)}")
    if not 1 <= min_digits <= max_digits or not 1 <= min_chars <= max_chars:
      raise ValueError("need 1 <= min_digits <= max_digits and 1 <= min_chars <= max_chars")
    self.min_digits, self.max_digits, self.min_chars, self.max_chars = min_digits, max_digits, min_chars, max_chars
    self.num_entities, self.facts_seed, self.search_k, self.search_tokens = (
        num_entities, facts_seed, search_k, search_tokens)
    self._search_tool, self._collection = None, None

  def collection(self) -> tuple[list[tuple[str, str]], list[facts_lib.Fact]]:
    """The search collection: ([(title, text)] documents, facts they state)."""
    if self._collection is None:
      self._collection = facts_lib.encyclopedia(self.facts_seed, self.num_entities)
    return self._collection

  def write_corpus(self, directory: str) -> str:
    """Write the collection as .txt files; returns the source spec for the search tool."""
    return facts_lib.write_documents(self.collection()[0], directory)

  def search_tool(self):
    """The search tool over the collection, as the engine runs it (same passages, same budget)."""
    if self._search_tool is None:
      from llm_jax.infer.tools.search import BM25Backend, SearchTool  # pylint: disable=g-import-not-at-top
      docs = [types.SimpleNamespace(text=facts_lib.document_text(t, b), id=t, metadata={})
              for t, b in self.collection()[0]]
      self._search_tool = SearchTool(BM25Backend.from_documents(docs), k=self.search_k,
                                     max_tokens=self.search_tokens)
    return self._search_tool

  def sample(self, rng: np.random.Generator) -> ToolExample:
    kind = self.kinds[int(rng.integers(len(self.kinds)))]
    return getattr(self, f"_{kind}")(rng)

  def _example(self, kind: str, question: str, parts: tuple[dict, ...], answer: str, key: str) -> ToolExample:
    reference = "\n".join(p["text"] for p in parts)
    return ToolExample(prompt=({"role": "user", "content": question},), reference=reference, answer=answer,
                       key=f"{kind}:{key}", meta={"kind": kind}, parts=parts)

  def _count_letter(self, rng) -> ToolExample:
    word = WORDS[int(rng.integers(len(WORDS)))]
    pool = word if rng.random() < 0.8 else "abcdefghijklmnopqrstuvwxyz"
    letter, q = pool[int(rng.integers(len(pool)))], ("'", '"', "")[int(rng.integers(3))]
    question = LETTER_QUESTIONS[int(rng.integers(len(LETTER_QUESTIONS)))].format(word=word, letter=letter, q=q)
    n = word.count(letter)
    parts = _parts(("text", _CODE_INTROS[int(rng.integers(3))]), ("python", f"{word!r}.count({letter!r})"),
                   ("python_output", str(n)),
                   ("text", f"There {'is' if n == 1 else 'are'} {n} '{letter}' in {word}.\n#### {n}"))
    return self._example("count_letter", question, parts, str(n), word)

  def _count_chars(self, rng) -> ToolExample:
    label, alphabet = ALPHABETS[int(rng.integers(len(ALPHABETS)))]
    s = "".join(alphabet[int(i)] for i in rng.integers(len(alphabet), size=int(rng.integers(self.min_chars,
                                                                                           self.max_chars + 1))))
    c = alphabet[int(rng.integers(len(alphabet)))]
    question = (f"How many times does '{c}' appear in this {label} string: {s}" if rng.random() < 0.5 else
                f"Count the '{c}' characters in: {s}")
    n = s.count(c)
    parts = _parts(("text", _CODE_INTROS[int(rng.integers(3))]), ("python", f"s = {s!r}\ns.count({c!r})"),
                   ("python_output", str(n)), ("text", f"The string has {n} '{c}'.\n#### {n}"))
    return self._example("count_chars", question, parts, str(n), f"{s}:{c}")

  def _big_arithmetic(self, rng) -> ToolExample:
    a, b = (int(rng.integers(10 ** (d - 1), 10 ** d)) for d in
            rng.integers(self.min_digits, self.max_digits + 1, size=2))
    op = "+-*"[int(rng.integers(3))]
    expression = f"{a} {op} {b}"
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    question = (f"What is {expression}?", f"Compute {expression}.", f"Calculate {a}{op}{b}")[int(rng.integers(3))]
    parts = _parts(("text", _MATH_INTROS[int(rng.integers(3))]), ("python", expression),
                   ("python_output", str(value)), ("text", f"{expression} = {value}\n#### {value}"))
    return self._example("big_arithmetic", question, parts, str(value), expression)

  def _search(self, rng) -> ToolExample:
    fact = self.collection()[1][int(rng.integers(len(self.collection()[1])))]
    parts = _parts(("text", _SEARCH_INTROS[int(rng.integers(3))]), ("search", fact.query),
                   ("search_output", self.search_tool()(fact.query)),
                   ("text", f"From the entry on {fact.key.split(':')[0]}: {fact.sentence} So the answer is "
                            f"{fact.answer}.\n#### {fact.answer}"))
    return self._example("search", fact.question, parts, fact.answer, fact.key)

  def reward(self, completion: str, example: Example) -> float:
    """1.0 when the `####` number of the model's prose (tool calls and outputs removed) is the answer."""
    return float(extract_number(strip_tools(completion)) == example.answer)
