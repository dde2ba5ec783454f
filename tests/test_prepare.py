"""The data stage end to end on a small corpus written here: artifacts, stats, resuming, refusals."""

import json
import os
import random

import pytest

from llm_jax.data import prepare, sources
from llm_jax.data.shards import TokenShards
from llm_jax.tokenizer import load_tokenizer
from llm_jax.tokenizer import train as tokenizer_train

WORDS = ("river forest harbour village castle garden market bridge island valley library station "
         "meadow tower orchard canal quarry mill chapel farm lake school bakery theatre").split()


def _corpus(root, n: int = 40) -> str:
  """n small distinct documents, a duplicate, a binary file and an HTML page; returns the spec."""
  root.mkdir(parents=True, exist_ok=True)
  for i in range(n):
    rng = random.Random(i)
    lines = [" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(3)]
    (root / f"{i:03d}.txt").write_text("\n".join(lines) + "\n")
  (root / "copy.txt").write_text((root / "000.txt").read_text())
  (root / "blob.txt").write_bytes(b"\0\1\2" * 100)
  (root / "page.html").write_text("<html><body><article><p>" + "A page about the quiet harbour. " * 8
                                  + "</p></article><nav>Home</nav></body></html>")
  return f"files:{root};clean=light"


def _configs(spec: str, **data):
  cfg = prepare.default_config()
  cfg.update(dict(source=spec, shard_tokens=2048, num_workers=0, progress=False, val_docs=4), **data)
  cfg.clean.num_workers, cfg.clean.progress = 0, False
  tok = tokenizer_train.default_config()
  tok.kind = "bytes"
  return cfg, tok


def test_prepare_data_end_to_end_with_a_trained_bpe(tmp_path):
  cfg, tok = _configs(_corpus(tmp_path / "corpus"))
  tok.update(dict(kind="bpe", vocab_size=400, num_threads=1))
  out = prepare.prepare_data(cfg, tok, str(tmp_path / "work"))
  data = tmp_path / "work" / "data"
  assert out["train_dir"] == str(data / "train") and out["val_dir"] == str(data / "val")
  docs = list(prepare.iter_clean_docs(str(data)))
  assert len(docs) == 41  # 40 notes + the page; the copy is a duplicate, the blob is binary
  page = [d for d in docs if d["id"].endswith("page.html")][0]
  assert page["text"].startswith("A page about") and "Home" not in page["text"]
  report = json.loads((data / "clean_report.json").read_text())
  assert report["stages"]["read"]["dropped"] == {"binary": 1}
  assert report["stages"]["exact_dedup"]["dropped"] == {"exact_duplicate": 1}
  assert "| exact_dedup |" in (data / "clean_report.md").read_text()
  stats = json.loads((data / "stats.json").read_text())
  assert stats == out["stats"]
  assert stats["val"]["documents"] == 4 and stats["train"]["documents"] == 37
  assert stats["train"]["bytes"] + stats["val"]["bytes"] == sum(len(d["text"].encode()) for d in docs)
  assert stats["train"]["bytes_per_token"] > 1.0  # BPE merges bytes
  tokenizer = load_tokenizer(out["tokenizer_dir"])
  assert tokenizer.vocab_size >= 300
  train = TokenShards(out["train_dir"])
  assert train.num_docs == 37 and train.num_tokens == stats["train"]["tokens"]
  first = train.read(0, int(train.doc_starts[1]) if train.num_docs > 1 else train.num_tokens)
  assert first[0] == tokenizer.bos_id and tokenizer.decode(first[1:]) in {d["text"] for d in docs}


def test_rerun_skips_finished_steps_and_resumes_missing_ones(tmp_path, monkeypatch):
  cfg, tok = _configs(_corpus(tmp_path / "corpus"))
  work = str(tmp_path / "work")
  first = prepare.prepare_data(cfg, tok, work)

  def no_reading(*args, **kwargs):
    raise AssertionError("the source was read again")

  monkeypatch.setattr(sources, "read_source", no_reading)
  assert prepare.prepare_data(cfg, tok, work) == first
  os.remove(os.path.join(work, "data", "stats.json"))
  os.remove(os.path.join(work, "data", "val", "index.json"))
  assert prepare.prepare_data(cfg, tok, work)["stats"] == first["stats"]


def test_a_partial_cleaning_is_redone(tmp_path):
  cfg, tok = _configs(_corpus(tmp_path / "corpus"))
  clean_dir = tmp_path / "work" / "data" / "clean"
  clean_dir.mkdir(parents=True)
  (clean_dir / "part_00000.jsonl").write_text('{"id": "half-writ')  # interrupted, no report
  out = prepare.prepare_data(cfg, tok, str(tmp_path / "work"))
  assert out["stats"]["train"]["documents"] + out["stats"]["val"]["documents"] == 41


def test_a_different_config_is_refused(tmp_path):
  cfg, tok = _configs(_corpus(tmp_path / "corpus"))
  prepare.prepare_data(cfg, tok, str(tmp_path / "work"))
  cfg.source = "builtin"
  with pytest.raises(ValueError, match="different data config.*source"):
    prepare.prepare_data(cfg, tok, str(tmp_path / "work"))
  cfg.source, cfg.num_workers = _corpus(tmp_path / "corpus"), 1  # runtime keys may change
  prepare.prepare_data(cfg, tok, str(tmp_path / "work"))


def test_weights_repeat_training_documents_only(tmp_path):
  spec = _corpus(tmp_path / "corpus") + "@2"
  cfg, tok = _configs(spec)
  stats = prepare.prepare_data(cfg, tok, str(tmp_path / "work"))["stats"]
  assert stats["train"]["documents"] == 2 * 37 and stats["val"]["documents"] == 4


def test_a_tiny_fraction_holds_out_one_document_and_all_is_an_error(tmp_path):
  cfg, tok = _configs(_corpus(tmp_path / "corpus", n=5), val_docs=0, val_fraction=1e-9)
  stats = prepare.prepare_data(cfg, tok, str(tmp_path / "work"))["stats"]
  assert stats["val"]["documents"] == 1 and stats["train"]["documents"] == 5  # 5 texts + the page - 1
  cfg.val_fraction = 1.0
  with pytest.raises(ValueError, match="val_fraction"):
    prepare.prepare_data(cfg, tok, str(tmp_path / "work2"))


def test_a_source_matching_nothing_fails_before_writing_anything(tmp_path):
  cfg, tok = _configs(f"files:{tmp_path}/missing/*.txt")
  with pytest.raises(FileNotFoundError, match="missing"):
    prepare.prepare_data(cfg, tok, str(tmp_path / "work"))
  cfg.source = _corpus(tmp_path / "corpus")  # fixing the spec is not "a different config"
  assert prepare.prepare_data(cfg, tok, str(tmp_path / "work"))["stats"]["val"]["documents"] == 4
