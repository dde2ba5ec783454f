"""The data stage: source -> cleaned documents -> train/val split -> tokenizer -> token shards.

Workdir layout it writes (each step is skipped when its artifact exists, so a re-run resumes):
  data/config.json         the data config the artifacts were made with (a different one is refused)
  data/clean/*.jsonl       cleaned documents {"id", "text", "metadata"}, in stream order
  data/clean_report.json   per stage: input, kept, dropped by reason (+ clean_report.md, a table);
                           written last, so its presence marks the cleaning as complete
  tokenizer/               train_tokenizer(tokenizer_cfg, train texts)
  data/train/, data/val/   write_shards(...) of each split
  data/stats.json          documents, bytes, tokens, bytes per token of each split
"""

import bisect
import json
import math
import os
import shutil
from collections.abc import Iterator

import ml_collections
import tqdm
from datatrove.data import Document

from llm_jax.data import clean as clean_lib
from llm_jax.data import sources as sources_lib

CLEAN_PART_BYTES = 256 << 20  # cleaned jsonl files are cut at about this size
_RUNTIME_KEYS = ("num_workers", "progress", "start_method", "chunk_docs")  # don't change outputs


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.source = "builtin"  # source spec, e.g. 'builtin,files:notes/*.md@0.5' (llm_jax.data.sources)
  cfg.max_docs = 0  # read at most this many documents (0: all)
  cfg.val_fraction = 0.01  # share of cleaned documents held out for validation (chosen by text hash)
  cfg.val_docs = 0  # if > 0: exactly this many validation documents instead of val_fraction
  cfg.shard_tokens = 1 << 24  # tokens per shard file
  cfg.num_workers = -1  # processes for tokenizing shards; -1: one per CPU, 0: this process
  cfg.progress = True  # progress bars and stage lines on the console
  cfg.clean = clean_lib.default_config()  # cleaning stages (llm_jax.data.clean)
  return cfg


def _say(cfg, message: str) -> None:
  if cfg.progress:
    tqdm.tqdm.write(f"[data] {message}")


def _fingerprint(cfg: ml_collections.ConfigDict) -> dict:
  d = cfg.to_dict()
  for key in _RUNTIME_KEYS:
    d.pop(key, None)
    d["clean"].pop(key, None)
  return json.loads(json.dumps(d, sort_keys=True, default=list))


def _check_config(cfg, data_dir: str) -> None:
  """Refuse a workdir whose data artifacts were made with another config."""
  path = os.path.join(data_dir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    have = json.load(f)
  want = _fingerprint(cfg)
  if have != want:
    changed = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    raise ValueError(f"{data_dir} was prepared with a different data config (changed: "
                     f"{', '.join(changed)}); use a new workdir or delete {data_dir}")


def _doc_line(doc: Document) -> str:
  return json.dumps({"id": doc.id, "text": doc.text, "metadata": doc.metadata},
                    ensure_ascii=False, default=str) + "\n"


def _clean(cfg, data_dir: str) -> dict:
  """Read + clean into data/clean/*.jsonl and write the report; skipped if the report exists."""
  report_path = os.path.join(data_dir, "clean_report.json")
  if os.path.exists(report_path):
    _say(cfg, f"cleaned documents exist in {data_dir}/clean: skipping cleaning")
    with open(report_path) as f:
      return json.load(f)
  stream = sources_lib.read_source(cfg.source, max_docs=cfg.max_docs or None)
  clean_dir = os.path.join(data_dir, "clean")
  shutil.rmtree(clean_dir, ignore_errors=True)  # a partial earlier attempt
  os.makedirs(clean_dir)
  _say(cfg, f"reading {cfg.source!r} and cleaning it into {clean_dir}")
  stages: clean_lib.report.Report = {}
  part, size, out = 0, 0, None
  try:
    for doc in clean_lib.iter_clean(cfg.clean, stream, stages):
      if out is None or size >= CLEAN_PART_BYTES:
        if out is not None:
          out.close()
        out = open(os.path.join(clean_dir, f"part_{part:05d}.jsonl"), "w", encoding="utf-8",
                   errors="surrogatepass")
        part, size = part + 1, 0
      line = _doc_line(doc)
      out.write(line)
      size += len(line)
  finally:
    if out is not None:
      out.close()
  read = clean_lib.StageReport(input=sum(stream.counts.values()) + sum(stream.skipped.values()),
                               kept=sum(stream.counts.values()), dropped=stream.skipped,
                               input_bytes=stream.bytes, kept_bytes=stream.bytes)
  full = {"read": read, **stages}
  report = {"source": cfg.source, "read_by_part": dict(stream.counts),
            "stages": clean_lib.report_to_dict(full)}
  with open(os.path.join(data_dir, "clean_report.md"), "w") as f:
    f.write(f"# Cleaning report: `{cfg.source}`\n\n{clean_lib.markdown_table(full)}")
  with open(os.path.join(data_dir, "config.json"), "w") as f:
    json.dump(_fingerprint(cfg), f, indent=1)
  with open(report_path + ".tmp", "w") as f:
    json.dump(report, f, indent=1)
  os.replace(report_path + ".tmp", report_path)
  _say(cfg, "cleaning report:\n" + clean_lib.markdown_table(full))
  return report


def iter_clean_docs(data_dir: str) -> Iterator[dict]:
  """The cleaned documents (dicts with id, text, metadata), in order."""
  clean_dir = os.path.join(data_dir, "clean")
  for name in sorted(os.listdir(clean_dir)):
    if name.endswith(".jsonl"):
      with open(os.path.join(clean_dir, name), encoding="utf-8", errors="surrogatepass") as f:
        for line in f:
          yield json.loads(line)


def _split_cutoff(cfg, data_dir: str) -> float:
  """Documents whose text hash is below the returned cutoff go to validation; checks that both
  splits get documents."""
  hashes = sorted(sources_lib.unit_hash(d["text"]) for d in iter_clean_docs(data_dir))
  if cfg.val_docs > 0:
    if cfg.val_docs >= len(hashes):
      raise ValueError(f"data.val_docs={cfg.val_docs} leaves no training documents "
                       f"({len(hashes)} cleaned); lower val_docs or add data")
    return math.nextafter(hashes[cfg.val_docs - 1], 1.0)
  if len(hashes) < 2:
    raise ValueError(f"only {len(hashes)} document(s) survived cleaning: too few for a train/val split; "
                     "add data or relax data.clean")
  num_val = bisect.bisect_left(hashes, cfg.val_fraction)
  if num_val == 0:  # a small corpus: hold out the single lowest-hash document rather than none
    return math.nextafter(hashes[0], 1.0)
  if num_val == len(hashes):
    raise ValueError(f"data.val_fraction={cfg.val_fraction} puts every cleaned document in validation; "
                     "lower it or set data.val_docs")
  return cfg.val_fraction


def _split_texts(data_dir: str, cutoff: float, split: str) -> Iterator[str]:
  """Texts of one split. Training documents repeat `copies` times (source weights), as whole
  extra passes so that repeats are far apart."""
  if split == "val":
    yield from (d["text"] for d in iter_clean_docs(data_dir) if sources_lib.unit_hash(d["text"]) < cutoff)
    return
  passes = 1
  pass_index = 0
  while pass_index < passes:
    for d in iter_clean_docs(data_dir):
      n = d["metadata"].get("copies", 1)
      passes = max(passes, n)
      if n > pass_index and sources_lib.unit_hash(d["text"]) >= cutoff:
        yield d["text"]
    pass_index += 1


def prepare_data(data_cfg: ml_collections.ConfigDict, tokenizer_cfg: ml_collections.ConfigDict,
                 workdir: str) -> dict:
  """Run (or resume) the data stage; returns {tokenizer_dir, train_dir, val_dir, stats}."""
  from llm_jax.data.shards import write_shards  # pylint: disable=g-import-not-at-top
  from llm_jax.tokenizer.train import train_tokenizer  # pylint: disable=g-import-not-at-top
  data_dir = os.path.join(workdir, "data")
  dirs = {"tokenizer_dir": os.path.join(workdir, "tokenizer"),
          "train_dir": os.path.join(data_dir, "train"), "val_dir": os.path.join(data_dir, "val")}
  stats_path = os.path.join(data_dir, "stats.json")
  _check_config(data_cfg, data_dir)
  if os.path.exists(stats_path) and os.path.isdir(dirs["tokenizer_dir"]):
    _say(data_cfg, f"data stage done earlier ({stats_path}): skipping")
    with open(stats_path) as f:
      return {**dirs, "stats": json.load(f)}
  report = _clean(data_cfg, data_dir)
  cutoff = _split_cutoff(data_cfg, data_dir)
  _say(data_cfg, f"training the tokenizer into {dirs['tokenizer_dir']}")
  tokenizer = train_tokenizer(tokenizer_cfg, _split_texts(data_dir, cutoff, "train"),
                              dirs["tokenizer_dir"])
  workers = None if data_cfg.num_workers < 0 else data_cfg.num_workers
  stats = {}
  for split in ("train", "val"):
    _say(data_cfg, f"writing {split} shards into {dirs[split + '_dir']}")
    s = write_shards(_split_texts(data_dir, cutoff, split), tokenizer, dirs[split + "_dir"],
                     shard_tokens=data_cfg.shard_tokens, num_workers=workers, progress=data_cfg.progress)
    stats[split] = {k: s[k] for k in ("documents", "bytes", "tokens", "bytes_per_token", "shards")}
  stats["clean"] = {name: {"input": s["input"], "kept": s["kept"]} for name, s in report["stages"].items()}
  with open(stats_path + ".tmp", "w") as f:
    json.dump(stats, f, indent=1)
  os.replace(stats_path + ".tmp", stats_path)
  _say(data_cfg, "stats: " + ", ".join(
      f"{k} {v['documents']} docs {v['tokens']} tokens {v['bytes_per_token']:.2f} B/token"
      for k, v in stats.items() if k != "clean"))
  return {**dirs, "stats": stats}
