"""Text sources named by one spec string, mixed with weights.

Spec syntax (parts separated by commas):
  spec   := part ("," part)*
  part   := kind [":" arg] (";" key "=" value)* ["@" weight]
  kinds  := builtin            the stdlib corpus: builtin:prose + builtin:code@0.2 (see builtin.py)
            builtin:prose | builtin:code
            files:<glob|dir>   .txt/.md/other text, .jsonl[.gz], .parquet (pyarrow), .html pages
            html:<glob|dir>    HTML pages only; URL from `page.html.url`, else canonical/og:url
            hf:org/name[/subset][:split]   Hugging Face `datasets` streaming (needs network)
  options: field=text          record field holding the text (jsonl, parquet, hf)
           clean=full|light|none   which cleaning applies (see llm_jax.data.clean): full = every
                               stage, light = URL filter + dedup + PII only (no language or quality
                               filters), none = only HTML extraction; default full, builtin: light
           max_line_mb=4       lines longer than this are skipped (never read whole)
           max_doc_mb=16       larger text files are cut into several documents; larger HTML skipped
  weight: passes over the source (default 1). Below 1 keeps that deterministic share of its documents
          (chosen by a hash of the document id); above 1 repeats each training document (the repeats
          are added after dedup, train split only; see `copies`). Sources are interleaved in
          proportion to their weights.
  Example: "builtin,files:notes/*.md;clean=light@0.5,files:web/*.jsonl;field=content@2"

Every document's metadata holds: source (its part), path, format ('text' or 'html'), clean (level),
copies (times it enters the training data), and url when known.
"""

import collections
import dataclasses
import hashlib
import math
import re
from collections.abc import Iterator

from datatrove.data import Document

from llm_jax.data.sources import builtin, files, hf

KINDS = ("builtin", "files", "html", "hf")
CLEAN_LEVELS = ("full", "light", "none")
BUILTIN_CODE_WEIGHT = 0.2  # share of the stdlib module sources in plain `builtin` (all prose is kept)
_DEFAULT_OPTIONS = {"field": "text", "clean": "full", "max_line_mb": 4.0, "max_doc_mb": 16.0}
_DEFAULT_CLEAN = {"builtin": "light"}
_WEIGHT_RE = re.compile(r"@([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)$")


@dataclasses.dataclass(frozen=True)
class Part:
  """One source of a spec: what to read, how to clean it, and how often it is used."""
  kind: str
  arg: str
  options: dict
  weight: float
  text: str


def _parse_part(text: str) -> list[Part]:
  body, weight = text, 1.0
  if m := _WEIGHT_RE.search(body):
    body, weight = body[: m.start()], float(m.group(1))
  if weight <= 0:
    raise ValueError(f"source {text!r}: weight must be > 0 (drop the part instead of weighting it 0)")
  body, *option_texts = body.split(";")
  kind, _, arg = body.partition(":")
  if kind not in KINDS:
    raise ValueError(f"source {text!r}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
  options = dict(_DEFAULT_OPTIONS, clean=_DEFAULT_CLEAN.get(kind, "full"))
  for option in option_texts:
    key, eq, value = option.partition("=")
    if not eq or key not in _DEFAULT_OPTIONS:
      raise ValueError(f"source {text!r}: bad option {option!r}; use key=value with keys "
                       f"{', '.join(_DEFAULT_OPTIONS)}")
    try:
      options[key] = type(_DEFAULT_OPTIONS[key])(value)
    except ValueError:
      raise ValueError(f"source {text!r}: option {key}={value!r} is not a "
                       f"{type(_DEFAULT_OPTIONS[key]).__name__}") from None
  if options["clean"] not in CLEAN_LEVELS:
    raise ValueError(f"source {text!r}: clean={options['clean']} is unknown; use one of "
                     f"{', '.join(CLEAN_LEVELS)}")
  if kind != "builtin" and not arg:
    raise ValueError(f"source {text!r} needs an argument, e.g. {kind}:path/to/*.txt")
  if kind == "builtin" and not arg:
    return [Part(kind, "prose", options, weight, text),
            Part(kind, "code", options, weight * BUILTIN_CODE_WEIGHT, text)]
  return [Part(kind, arg, options, weight, text)]


def parse_spec(spec: str) -> list[Part]:
  """The parts of a spec string (see the module docstring for the syntax)."""
  texts = [t.strip() for t in spec.split(",") if t.strip()]
  if not texts:
    raise ValueError("data source spec is empty; try 'builtin' or 'files:path/to/*.txt'")
  return [part for text in texts for part in _parse_part(text)]


def _open_part(part: Part, skipped: collections.Counter) -> Iterator[Document]:
  """Resolve a part now (errors raise at once) and return its document iterator."""
  opts = dict(part.options, max_line_bytes=int(part.options["max_line_mb"] * 2**20),
              max_doc_bytes=int(part.options["max_doc_mb"] * 2**20))
  if part.kind == "builtin":
    return builtin.iter_builtin(part.arg)
  if part.kind == "hf":
    return hf.open_hf(part.arg, part.text, opts, skipped)
  paths = files.resolve(part.arg, part.text, html_only=part.kind == "html")
  if any(p.lower().endswith(files.PARQUET_EXTENSIONS) for p in paths):
    try:
      import pyarrow.parquet  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      raise RuntimeError(f"source {part.text!r} has .parquet files, which need pyarrow: "
                         "pip install pyarrow") from None
  return files.iter_files(paths, opts, skipped)


def unit_hash(key: str) -> float:
  """A deterministic number in [0, 1) for `key`."""
  return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                        "little") / 2**64


def copies(doc_id: str, weight: float) -> int:
  """How many times a document of a source with `weight` is used: floor(weight), plus one more
  for a hash-chosen share (weight - floor(weight)) of the documents."""
  whole = math.floor(weight)
  return whole + (1 if unit_hash(doc_id) < weight - whole else 0)


class SourceStream(Iterator[Document]):
  """Documents of a spec in a deterministic order. `skipped` counts documents left out by reason;
  `counts` counts documents yielded per part, `bytes` their UTF-8 bytes."""

  def __init__(self, spec: str, max_docs: int | None = None):
    self.spec = spec
    self.parts = parse_spec(spec)
    self.max_docs = max_docs
    self.skipped: collections.Counter = collections.Counter()
    self.counts: collections.Counter = collections.Counter()
    self.bytes = 0
    readers = [_open_part(p, self.skipped) for p in self.parts]
    self._docs = self._mix(readers)

  def _tag(self, doc: Document, part: Part) -> int:
    label = part.text if part.kind != "builtin" else f"builtin:{part.arg}"
    n = copies(doc.id, part.weight)
    doc.metadata.update(source=label, clean=part.options["clean"], copies=n)
    doc.metadata.setdefault("format", "text")
    return n

  def _mix(self, readers: list[Iterator[Document]]) -> Iterator[Document]:
    served = [0] * len(readers)
    live = list(range(len(readers)))
    produced = 0
    while live and (self.max_docs is None or produced < self.max_docs):
      i = min(live, key=lambda j: ((served[j] + 1) / self.parts[j].weight, j))
      doc = next(readers[i], None)
      if doc is None:
        live.remove(i)
        continue
      served[i] += 1
      if self._tag(doc, self.parts[i]) == 0:
        self.skipped["subsampled_by_weight"] += 1
        continue
      self.counts[doc.metadata["source"]] += 1
      self.bytes += len(doc.text.encode("utf-8", "surrogatepass"))
      produced += 1
      yield doc

  def __next__(self) -> Document:
    return next(self._docs)


def read_source(spec: str, *, max_docs: int | None = None) -> SourceStream:
  """Iterator over the documents `spec` names (at most `max_docs`). Raises at once, naming the
  spec, when a part matches nothing or cannot be opened."""
  return SourceStream(spec, max_docs)
