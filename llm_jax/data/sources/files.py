"""Documents from local files: text/markdown, jsonl (optionally .gz), parquet, and HTML pages.

Bad input never stops a run: a file or record that cannot be used is skipped and counted in `skipped`
under a reason (binary, invalid_utf8, empty, line_too_long, malformed_json, missing_field, unreadable).
Nothing larger than `max_line_bytes` is ever held in memory for one line.
"""

import collections
import glob
import gzip
import json
import os
from collections.abc import Iterator

from datatrove.data import Document

JSONL_EXTENSIONS = (".jsonl", ".jsonl.gz", ".ndjson")
PARQUET_EXTENSIONS = (".parquet",)
HTML_EXTENSIONS = (".html", ".htm", ".html.gz")
URL_SIDECAR = ".url"  # `page.html.url` holds the URL of `page.html` on its first line.
_SNIFF_BYTES = 8192


def resolve(pattern: str, spec: str, html_only: bool = False) -> list[str]:
  """Sorted files a glob or folder names (folders recursively, hidden entries and URL sidecars left
  out); raises naming `spec` when nothing matches."""
  if os.path.isdir(pattern):
    paths = []
    for folder, dirs, names in os.walk(pattern):
      dirs[:] = [d for d in dirs if not d.startswith(".")]
      paths.extend(os.path.join(folder, n) for n in names if not n.startswith("."))
  else:
    paths = [p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
  paths = sorted(p for p in paths if not p.endswith(URL_SIDECAR))
  if html_only:
    paths = [p for p in paths if p.lower().endswith(HTML_EXTENSIONS)]
  if not paths:
    kind = "HTML files" if html_only else "files"
    raise FileNotFoundError(f"source {spec!r} matched no {kind}: check the path or glob {pattern!r}")
  return paths


def _open(path: str):
  return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _lines(f, max_line_bytes: int) -> Iterator[bytes | None]:
  """Raw lines of a binary file; None in place of a line longer than `max_line_bytes` (which is
  read through in pieces and dropped, never held whole)."""
  while True:
    line = f.readline(max_line_bytes + 1)
    if not line:
      return
    if len(line) > max_line_bytes and not line.endswith(b"\n"):
      while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
        pass
      yield None
    else:
      yield line


def _is_binary(path: str) -> bool:
  with _open(path) as f:
    return b"\0" in f.read(_SNIFF_BYTES)


def _text_docs(path: str, opts: dict, skipped: collections.Counter) -> Iterator[Document]:
  """One document per text file; files over `max_doc_bytes` are cut at line ends into several."""
  parts, size, count = [], 0, 0
  try:
    with _open(path) as f:
      for line in _lines(f, opts["max_line_bytes"]):
        if line is None:
          skipped["line_too_long"] += 1
          return
        parts.append(line)
        size += len(line)
        if size >= opts["max_doc_bytes"]:
          yield from _text_doc(path, parts, count, skipped)
          parts, size, count = [], 0, count + 1
  except (OSError, EOFError, gzip.BadGzipFile):
    skipped["unreadable"] += 1
    return
  if parts or count == 0:
    yield from _text_doc(path, parts, count, skipped)


def _text_doc(path: str, parts: list[bytes], index: int, skipped) -> Iterator[Document]:
  try:
    text = b"".join(parts).decode("utf-8").removeprefix("\ufeff")
  except UnicodeDecodeError:
    skipped["invalid_utf8"] += 1
    return
  if not text.strip():
    skipped["empty"] += 1
    return
  doc_id = f"files:{path}" if index == 0 else f"files:{path}#{index}"
  yield Document(text=text, id=doc_id, metadata={"path": path})


def _jsonl_docs(path: str, opts: dict, skipped: collections.Counter) -> Iterator[Document]:
  field = opts["field"]
  try:
    with _open(path) as f:
      for number, line in enumerate(_lines(f, opts["max_line_bytes"]), start=1):
        if line is None:
          skipped["line_too_long"] += 1
          continue
        if not line.strip():
          continue
        try:
          record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
          skipped["invalid_utf8"] += 1
          continue
        except ValueError:
          skipped["malformed_json"] += 1
          continue
        doc = record_doc(record, field, f"files:{path}#{number}", path, skipped)
        if doc is not None:
          yield doc
  except (OSError, EOFError, gzip.BadGzipFile):
    skipped["unreadable"] += 1


def record_doc(record, field: str, doc_id: str, path: str, skipped) -> Document | None:
  """A document from one json/parquet/hf record, or None (counted) if it has no usable text."""
  if not isinstance(record, dict):
    skipped["malformed_json"] += 1
    return None
  text = record.get(field)
  if not isinstance(text, str):
    skipped["missing_field"] += 1
    return None
  if not text.strip():
    skipped["empty"] += 1
    return None
  metadata = {"path": path}
  if isinstance(record.get("url"), str) and record["url"]:
    metadata["url"] = record["url"]
  if isinstance(record.get("id"), (str, int)):
    doc_id = f"{doc_id}:{record['id']}"
  return Document(text=text, id=doc_id, metadata=metadata)


def _parquet_docs(path: str, opts: dict, skipped: collections.Counter) -> Iterator[Document]:
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  field = opts["field"]
  try:
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    if field not in names:
      skipped["missing_field"] += pf.metadata.num_rows
      return
    columns = [field] + (["url"] if "url" in names else [])
    row = 0
    for batch in pf.iter_batches(columns=columns, batch_size=1024):
      for record in batch.to_pylist():
        row += 1
        doc = record_doc(record, field, f"files:{path}#{row}", path, skipped)
        if doc is not None:
          yield doc
  except Exception:  # pylint: disable=broad-except  (corrupt or truncated file)
    skipped["unreadable"] += 1


def page_url(path: str, html: str) -> str | None:
  """URL of a saved page: its sidecar file, else the page's canonical link or og:url."""
  sidecar = path + URL_SIDECAR
  if os.path.exists(sidecar):
    with open(sidecar, encoding="utf-8", errors="replace") as f:
      url = f.readline().strip()
    if url:
      return url
  from trafilatura.metadata import extract_metadata  # pylint: disable=g-import-not-at-top
  try:
    return extract_metadata(html, extensive=False).url
  except Exception:  # pylint: disable=broad-except  (metadata is optional)
    return None


def _html_docs(path: str, opts: dict, skipped: collections.Counter) -> Iterator[Document]:
  """One HTML document per page (text extraction happens in cleaning); bytes of any encoding are
  decoded by trafilatura's detector."""
  from trafilatura.utils import decode_file  # pylint: disable=g-import-not-at-top
  try:
    if os.path.getsize(path) > opts["max_doc_bytes"]:
      skipped["too_large"] += 1
      return
    with _open(path) as f:
      raw = f.read(opts["max_doc_bytes"] + 1)
  except (OSError, EOFError, gzip.BadGzipFile):
    skipped["unreadable"] += 1
    return
  if len(raw) > opts["max_doc_bytes"]:
    skipped["too_large"] += 1
    return
  if b"\0" in raw[:_SNIFF_BYTES]:
    skipped["binary"] += 1
    return
  html = decode_file(raw)
  if not html.strip():
    skipped["empty"] += 1
    return
  metadata = {"path": path, "format": "html"}
  url = page_url(path, html)
  if url:
    metadata["url"] = url
  yield Document(text=html, id=f"files:{path}", metadata=metadata)


def iter_files(paths: list[str], opts: dict, skipped: collections.Counter) -> Iterator[Document]:
  """Documents of `paths` in order, each file routed by its extension (unknown ones read as text)."""
  for path in paths:
    lower = path.lower()
    if lower.endswith(HTML_EXTENSIONS):
      yield from _html_docs(path, opts, skipped)
      continue
    if lower.endswith(PARQUET_EXTENSIONS):
      yield from _parquet_docs(path, opts, skipped)
      continue
    try:
      if os.path.getsize(path) == 0:
        skipped["empty"] += 1
        continue
      if _is_binary(path):
        skipped["binary"] += 1
        continue
    except (OSError, EOFError, gzip.BadGzipFile):
      skipped["unreadable"] += 1
      continue
    reader = _jsonl_docs if lower.endswith(JSONL_EXTENSIONS) else _text_docs
    yield from reader(path, opts, skipped)
