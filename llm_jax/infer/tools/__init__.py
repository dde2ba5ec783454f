"""Tools the engine runs for the model: `python` (a locked-down interpreter) and `search` (BM25 over
local documents). A tool is any `Callable[[str], str]`: call text in, output text out, never raising
because of what the model wrote."""

from collections.abc import Callable, Sequence

from llm_jax.tokenizer import special

Tool = Callable[[str], str]
# tool name -> (call start, call end) special tokens; the output goes between <|output_start|>/<|output_end|>
TOOL_TOKENS = {"python": (special.PYTHON_START, special.PYTHON_END),
               "search": (special.SEARCH_START, special.SEARCH_END)}


def make_tools(names: str | Sequence[str], corpus_spec: str = "", *, tokenizer=None, python_limits=None,
               search_k: int = 3, search_tokens: int = 256) -> dict[str, Tool]:
  """{name: tool} for names like "python,search"; `corpus_spec` (a data source spec such as
  'files:notes/*.txt') is what search searches; `tokenizer` measures the search output budget."""
  names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
  unknown = [n for n in names if n not in TOOL_TOKENS]
  if unknown:
    raise ValueError(f"unknown tool(s) {unknown}; choose from {', '.join(TOOL_TOKENS)}")
  tools: dict[str, Tool] = {}
  if "python" in names:
    from llm_jax.infer.tools.python_sandbox import PythonSandbox, SandboxLimits  # pylint: disable=g-import-not-at-top
    tools["python"] = PythonSandbox(python_limits or SandboxLimits())
  if "search" in names:
    if not corpus_spec:
      raise ValueError("the search tool needs a corpus: give a source spec such as files:notes/*.txt")
    from llm_jax.infer.tools.search import BM25Backend, SearchTool  # pylint: disable=g-import-not-at-top
    count = (lambda s: len(tokenizer.encode(s))) if tokenizer is not None else None
    tools["search"] = SearchTool(BM25Backend.from_source(corpus_spec), k=search_k, max_tokens=search_tokens,
                                 count_tokens=count)
  return tools
