"""Sources: spec parsing, mixtures, bad files skipped and counted, HTML URLs, builtin corpus."""

import gzip
import json
import sys

import pytest

from llm_jax.data import sources
from llm_jax.data.sources import builtin

PROSE = "The river runs past the old mill and into the sea. " * 5


def _write(path, data):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data if isinstance(data, bytes) else data.encode())
  return path


def test_parse_spec_options_weights_and_builtin_expansion():
  parts = sources.parse_spec("builtin@2, files:a/*.jsonl;field=body;clean=light@0.5")
  assert [(p.kind, p.arg, p.weight) for p in parts] == [
      ("builtin", "prose", 2.0), ("builtin", "code", 2.0 * sources.BUILTIN_CODE_WEIGHT),
      ("files", "a/*.jsonl", 0.5)]
  assert parts[0].options["clean"] == "light"  # builtin defaults to light cleaning
  assert parts[2].options["field"] == "body" and parts[2].options["clean"] == "light"


@pytest.mark.parametrize("spec, message", [
    ("", "empty"), ("ftp:x", "unknown kind"), ("files:x;colour=red", "bad option"),
    ("files:x@0", "weight must be > 0"), ("files:x;clean=some", "clean=some"), ("files", "argument"),
])
def test_parse_spec_errors_say_what_to_change(spec, message):
  with pytest.raises(ValueError, match=message):
    sources.parse_spec(spec)


def test_spec_matching_nothing_fails_at_once_naming_it(tmp_path):
  spec = f"files:{tmp_path}/nothing/*.txt"
  with pytest.raises(FileNotFoundError, match="nothing/\\*.txt"):
    sources.read_source(spec)
  _write(tmp_path / "a.txt", PROSE)
  with pytest.raises(FileNotFoundError, match=f"html:{tmp_path}"):
    sources.read_source(f"html:{tmp_path}")  # a folder with no HTML pages


def test_bad_files_are_skipped_and_counted(tmp_path):
  d = tmp_path / "corpus"
  _write(d / "good.txt", PROSE)
  _write(d / "notes.md", "# Title\n\n" + PROSE)
  _write(d / "empty.txt", b"")
  _write(d / "blank.txt", b"  \n\n")
  _write(d / "image.bin", b"\x89PNG\r\n\x1a\n\0\0\0" + bytes(range(256)) * 4)
  _write(d / "latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
  _write(d / "huge.txt", b"x" * (2 * 2**20 + 10) + b"\n")  # one 2 MB line; limit below is 1 MB
  _write(d / ".hidden.txt", PROSE)
  lines = [json.dumps({"text": "first record " + PROSE, "url": "https://a.example/1"}),
           "{not json", json.dumps({"body": "no text field"}), json.dumps({"text": 7}),
           json.dumps(["a", "list"]), "", json.dumps({"text": "   "}),
           json.dumps({"text": "long " * 300_000}), json.dumps({"text": "last record " + PROSE})]
  _write(d / "records.jsonl", "\n".join(lines) + "\n")
  _write(d / "bad_utf8.jsonl", b'{"text": "\xff\xfe"}\n')
  _write(d / "packed.jsonl.gz", gzip.compress(json.dumps({"text": "gzipped " + PROSE}).encode()))
  stream = sources.read_source(f"files:{d};max_line_mb=1")
  docs = list(stream)
  ids = [doc.id.split("/")[-1] for doc in docs]
  assert ids == ["good.txt", "notes.md", "packed.jsonl.gz#1", "records.jsonl#1", "records.jsonl#9"]
  assert docs[3].metadata["url"] == "https://a.example/1"
  assert all(doc.metadata["clean"] == "full" and doc.metadata["copies"] == 1 for doc in docs)
  assert dict(stream.skipped) == {
      "empty": 3, "binary": 1, "invalid_utf8": 2, "line_too_long": 2, "malformed_json": 2,
      "missing_field": 2}


def test_large_text_files_are_cut_into_documents(tmp_path):
  line = "A line of plain English text that ends here.\n"
  _write(tmp_path / "big.txt", line * 50_000)  # ~2.3 MB
  docs = list(sources.read_source(f"files:{tmp_path}/*.txt;max_doc_mb=1"))
  assert len(docs) == 3 and docs[1].id.endswith("big.txt#1")
  assert "".join(d.text for d in docs) == line * 50_000


def test_html_pages_get_urls_from_sidecar_canonical_or_og(tmp_path):
  page = "<html><head>{}</head><body><p>" + PROSE + "</p></body></html>"
  _write(tmp_path / "a.html", page.format(""))
  _write(tmp_path / "a.html.url", "https://side.example/a\n")
  _write(tmp_path / "b.html", page.format('<link rel="canonical" href="https://canon.example/b">'))
  _write(tmp_path / "c.htm", page.format('<meta property="og:url" content="https://og.example/c">'))
  _write(tmp_path / "d.html", page.format("<title>no url</title>"))
  _write(tmp_path / "skip.txt", PROSE)
  docs = list(sources.read_source(f"html:{tmp_path}"))
  assert [d.metadata.get("url") for d in docs] == [
      "https://side.example/a", "https://canon.example/b", "https://og.example/c", None]
  assert all(d.metadata["format"] == "html" and "<p>" in d.text for d in docs)


def test_mixture_interleaves_by_weight_subsamples_and_repeats(tmp_path):
  for name in ("a", "b"):
    for i in range(40):
      _write(tmp_path / name / f"{i:02d}.txt", f"{name} {i} " + PROSE)
  stream = sources.read_source(f"files:{tmp_path}/a@2,files:{tmp_path}/b@0.5")
  docs = list(stream)
  by_source = [d.metadata["source"].split("/")[-1][0] for d in docs]
  assert by_source.count("a") == 40 and 10 <= by_source.count("b") <= 30
  assert stream.skipped["subsampled_by_weight"] == 40 - by_source.count("b")
  assert {d.metadata["copies"] for d in docs} == {1, 2}
  assert by_source[:10].count("a") >= 7  # a is served 4x as often as b (weights 2 : 0.5)
  again = [d.id for d in sources.read_source(f"files:{tmp_path}/a@2,files:{tmp_path}/b@0.5")]
  assert again == [d.id for d in docs]
  assert len(list(sources.read_source(f"files:{tmp_path}/a", max_docs=7))) == 7


def test_parquet_text_column(tmp_path):
  import pyarrow as pa
  import pyarrow.parquet as pq
  pq.write_table(pa.table({"content": ["one " + PROSE, None, "two " + PROSE]}), tmp_path / "t.parquet")
  stream = sources.read_source(f"files:{tmp_path}/t.parquet;field=content")
  assert [d.text[:4] for d in stream] == ["one ", "two "]
  assert stream.skipped == {"missing_field": 1}
  stream = sources.read_source(f"files:{tmp_path}/t.parquet")
  assert list(stream) == [] and stream.skipped == {"missing_field": 3}


def test_hf_without_datasets_package_is_a_one_line_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
  with pytest.raises(RuntimeError, match="hf:org/name.*needs the `datasets` package") as e:
    sources.read_source("hf:org/name:train")
  assert "\n" not in str(e.value)


def test_hf_names():
  from llm_jax.data.sources import hf
  assert hf.parse_name("org/name") == ("org/name", None, "train")
  assert hf.parse_name("HuggingFaceFW/fineweb-edu/sample-10BT:test") == (
      "HuggingFaceFW/fineweb-edu", "sample-10BT", "test")


def test_builtin_is_several_mb_and_deterministic():
  stream = sources.read_source("builtin")
  docs = list(stream)
  size = sum(len(d.text.encode()) for d in docs)
  prose = sum(len(d.text.encode()) for d in docs if d.metadata["source"] == "builtin:prose")
  assert size > 4e6 and prose > 0.4 * size, (size, prose)
  assert len({d.id for d in docs}) == len(docs)
  assert any(d.id == "builtin:topics/assert" for d in docs)
  assert all(d.metadata["clean"] == "light" for d in docs)
  first = [(d.id, d.text) for d in sources.read_source("builtin", max_docs=200)]
  assert first == [(d.id, d.text) for d in docs[:200]]


def test_builtin_reads_files_and_never_imports(tmp_path):
  root = tmp_path / "lib"
  _write(root / "pkg" / "__init__.py", '"""Package docs."""\nraise SystemExit("imported!")\n')
  _write(root / "pkg" / "mod.py", 'def f(a, *, b=1):\n  """Do f."""\n\nclass C:\n  """A C."""\n'
         '  def m(self):\n    """Method m."""\n')
  _write(root / "test" / "test_x.py", '"""Test suite docs are left out."""\n')
  _write(root / "broken.py", "def (:\n")
  _write(root / "pydoc_data" / "topics.py", "topics = {'assert': 'The assert statement.'}\n")
  docs = list(builtin.iter_builtin("prose", str(root)))
  texts = {d.id: d.text for d in docs}
  assert texts["builtin:topics/assert"] == "The assert statement."
  assert texts["builtin:docstrings/pkg/__init__.py"] == "Module pkg\n\nPackage docs."
  assert texts["builtin:docstrings/pkg/mod.py"] == (
      "pkg.mod.f(a, *, b=1)\n\nDo f.\n\nclass pkg.mod.C\n\nA C.\n\npkg.mod.C.m(self)\n\nMethod m.")
  assert not any("test" in i for i in texts)
