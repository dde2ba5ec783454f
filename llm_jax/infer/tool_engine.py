"""Generation with tools, on top of the Engine's forced-token hook (nanochat's forced-token queue).

Each row is followed on its own: when it closes a tool call (`<|python_end|>`, `<|search_end|>`), the tool
runs on the text since the matching start token, and `<|output_start|>` + output + `<|output_end|>` is
queued for that row; queued tokens replace what the row samples, one per step, through the same jitted
decode step (a per-row override array), so forcing never recompiles and the other rows keep sampling.
Calls that close in the same step run concurrently. Forced tokens are marked (`Completion.forced`) so
SFT/RL put no loss on them. Limits: calls per answer, tokens per output (cut with a marker), and the
total length (`SamplingParams.max_new_tokens`, forced tokens included).
"""

import collections
import dataclasses
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.tools import TOOL_TOKENS, Tool
from llm_jax.tokenizer import special

TRUNCATED = "\n[... output truncated]"


@dataclasses.dataclass(frozen=True)
class ToolLimits:
  max_calls: int = 4  # tool calls per answer; later calls get an error as their output
  max_output_tokens: int = 256  # tokens of one output between the output tokens; longer ones are cut


@dataclasses.dataclass
class ToolCall:
  tool: str
  text: str  # the call (code, query)
  output: str  # what the tool returned (before any cut to max_output_tokens)
  step: int  # generated position of the call's end token


@dataclasses.dataclass
class Completion:
  ids: list[int]  # generated ids, forced ones included
  forced: list[bool]  # per id: fed by the engine (tool output), not sampled
  calls: list[ToolCall]
  finished: bool = False  # ended by a stop token (not by the length budget)

  @property
  def loss_mask(self) -> list[int]:
    """1 where the model chose the token (the loss may train it), 0 on forced tool output."""
    return [int(not f) for f in self.forced]


@dataclasses.dataclass
class _Row:
  tool: str | None = None  # the tool whose call is open
  call: list[int] = dataclasses.field(default_factory=list)
  queue: collections.deque = dataclasses.field(default_factory=collections.deque)
  calls: list[ToolCall] = dataclasses.field(default_factory=list)


def completion_parts(tokenizer, ids: Sequence[int]) -> list[dict]:
  """A reply's content parts (text, python, python_output, search, search_output): the form `render`
  takes back, e.g. for chat history or RL rollouts. Empty calls are dropped with their outputs."""
  sid = lambda t: tokenizer.special_id(t) if tokenizer.has_special(t) else None
  starts = {sid(start): name for name, (start, _) in TOOL_TOKENS.items() if sid(start) is not None}
  ends = {name: sid(end) for name, (_, end) in TOOL_TOKENS.items()}
  parts, kind, buf, last_call = [], "text", [], None

  def flush(new_kind: str) -> None:
    nonlocal kind, buf
    text = tokenizer.decode(buf)
    if kind.endswith("_output") and (not parts or parts[-1]["type"] != kind[:-len("_output")]):
      pass  # the call was empty and dropped
    elif text.strip() or kind.endswith("_output"):
      parts.append({"type": kind, "text": text})
    kind, buf = new_kind, []

  for t in map(int, ids):
    if kind == "text" and t in starts:
      flush(starts[t])
    elif kind in ends and t == ends[kind]:
      last_call = kind
      flush("text")
    elif kind == "text" and t == sid(special.OUTPUT_START) and last_call:
      flush(f"{last_call}_output")
    elif kind.endswith("_output") and t == sid(special.OUTPUT_END):
      flush("text")
    else:
      buf.append(t)
  flush("text")
  return parts


class ToolEngine:
  """`generate`/`stream` like Engine's, running `tools` ({name: Callable[[str], str]}) for each row."""

  def __init__(self, engine: Engine, tokenizer, tools: dict[str, Tool], limits: ToolLimits = ToolLimits(),
               workers: int = 8):
    self.engine, self.tokenizer, self.tools, self.limits = engine, tokenizer, tools, limits
    self.max_seq_len, self.workers = engine.max_seq_len, workers
    unknown = set(tools) - set(TOOL_TOKENS)
    if unknown:
      raise ValueError(f"no call tokens for tool(s) {sorted(unknown)}; known tools: {', '.join(TOOL_TOKENS)}")
    known = [n for n, (start, end) in TOOL_TOKENS.items()
             if tokenizer.has_special(start) and tokenizer.has_special(end)]
    missing = sorted(set(tools) - set(known))
    if missing or not tokenizer.has_special(special.OUTPUT_START):
      raise ValueError(f"the tokenizer lacks the tool tokens of {missing or 'outputs'}; tools need them")
    self._starts = {tokenizer.special_id(TOOL_TOKENS[n][0]): n for n in known}
    self._ends = {n: tokenizer.special_id(TOOL_TOKENS[n][1]) for n in known}
    self._open, self._close = tokenizer.special_id(special.OUTPUT_START), tokenizer.special_id(special.OUTPUT_END)
    self._marker = tokenizer.encode(TRUNCATED)
    if limits.max_output_tokens <= len(self._marker):
      raise ValueError(f"max_output_tokens={limits.max_output_tokens} leaves no room for output")

  def _run(self, name: str, text: str, calls_so_far: int) -> str:
    if name not in self.tools:
      return f"Error: the {name} tool is not available here"
    if calls_so_far >= self.limits.max_calls:
      return f"Error: tool call limit reached ({self.limits.max_calls} per answer); answer without tools"
    try:
      return str(self.tools[name](text))
    except Exception as e:  # pylint: disable=broad-except  (a failing tool is an answer, not a crash)
      return f"Error: {name} failed: {type(e).__name__}: {e}"[:500]

  def output_ids(self, text: str) -> list[int]:
    """<|output_start|> ids <|output_end|>, the ids cut to max_output_tokens (ending with a marker)."""
    ids, n = self.tokenizer.encode(text), self.limits.max_output_tokens
    if len(ids) > n:
      ids = ids[:n - len(self._marker)] + self._marker
    return [self._open] + ids + [self._close]

  def _step(self, rows: list[_Row], step: int, tokens_B: np.ndarray, active_B: np.ndarray,
            forced_B: np.ndarray) -> np.ndarray:
    """Follow each row's newest token, run the calls it closes, and return next forced ids (-1: none)."""
    closed = []
    for i, row in enumerate(rows):
      token = int(tokens_B[i])
      if not active_B[i]:
        row.queue.clear()
      elif forced_B[i] >= 0:
        continue  # tool output is never parsed as a call
      elif token in self._starts:
        row.tool, row.call = self._starts[token], []
      elif row.tool is not None and token == self._ends[row.tool]:
        closed.append(i)
      elif row.tool is not None:
        row.call.append(token)
    jobs = [(rows[i].tool, self.tokenizer.decode(rows[i].call), len(rows[i].calls)) for i in closed]
    if len(jobs) > 1:
      with ThreadPoolExecutor(min(len(jobs), self.workers)) as pool:
        outputs = list(pool.map(lambda job: self._run(*job), jobs))
    else:
      outputs = [self._run(*job) for job in jobs]
    for i, (name, text, _), output in zip(closed, jobs, outputs):
      rows[i].calls.append(ToolCall(name, text, output, step))
      rows[i].queue.extend(self.output_ids(output))
      rows[i].tool, rows[i].call = None, []
    return np.array([row.queue.popleft() if row.queue else -1 for row in rows], np.int32)

  def _stream(self, prompts: Sequence[Sequence[int]], params: SamplingParams, rows: list[_Row]):
    forced_B, yielded = np.full(len(prompts), -1, np.int32), 0

    def force(tokens_B: np.ndarray, active_B: np.ndarray) -> np.ndarray:  # after position yielded - 1
      nonlocal forced_B
      forced_B = self._step(rows, yielded - 1, tokens_B, active_B, forced_B)
      return forced_B

    for tokens_B, logits_BxV, active_B in self.engine.stream(prompts, params, force=force):
      yielded += 1
      yield tokens_B, logits_BxV, active_B, forced_B >= 0

  def stream(self, prompts: Sequence[Sequence[int]], params: SamplingParams
             ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yields (tokens int32[B], logits float32[B, V], active bool[B], forced bool[B]) per position."""
    return self._stream(prompts, params, [_Row() for _ in prompts])

  def complete(self, prompts: Sequence[Sequence[int]], params: SamplingParams, include_stop: bool = False
               ) -> list[Completion]:
    """Per prompt: generated ids with their forced mask and tool calls, cut at the first stop token."""
    rows, stop = [_Row() for _ in prompts], set(params.stop_ids)
    out = [Completion([], [], row.calls) for row in rows]
    for tokens_B, _, active_B, forced_B in self._stream(prompts, params, rows):
      for i in np.flatnonzero(active_B):
        token = int(tokens_B[i])
        if token in stop and not forced_B[i]:
          out[i].finished = True
          if not include_stop:
            continue
        out[i].ids.append(token)
        out[i].forced.append(bool(forced_B[i]))
    return out

  def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams, include_stop: bool = False
               ) -> list[list[int]]:
    """Like Engine.generate: ids per prompt (tool calls and outputs included), cut at the first stop."""
    return [c.ids for c in self.complete(prompts, params, include_stop)]
