"""Conversations for fine-tuning: local OpenAI-messages JSONL, Hugging Face chat sets, synthetic tasks,
mixed by weight. Malformed conversations are skipped and counted by reason.

Mixture spec (comma-separated parts, `@weight` optional, default 1):
  identity | arithmetic | spelling   a synthetic task (llm_jax.tasks), split "train" / "test"
  files:<glob>                       JSONL lines {"messages": [...]} or a bare list of messages
  hf:oasst1 | hf:ultrachat | hf:smoltalk   Hugging Face sets (need `datasets` and network)
e.g. "identity@0.1,arithmetic@0.5,spelling@0.4,files:my_chats/*.jsonl@0.5". A part gets
round(total * weight / sum of weights) conversations; a finite source smaller than that is repeated
(reshuffled each pass). Files and HF sets are split into train/val by a hash of each conversation.
"""

import collections
import glob
import itertools
import json
import os
from collections.abc import Iterable, Iterator

import numpy as np

from llm_jax import tasks as tasks_lib
from llm_jax.tasks.base import split_of
from llm_jax.tokenizer.chat import InvalidConversation, normalize

# name -> (dataset, subset, split) of the Hugging Face chat sets we know how to read.
HF_SETS = {"oasst1": ("OpenAssistant/oasst1", None, "train"),
           "ultrachat": ("HuggingFaceH4/ultrachat_200k", None, "train_sft"),
           "smoltalk": ("HuggingFaceTB/smoltalk", "all", "train")}


def valid(conversations: Iterable, skipped: collections.Counter) -> Iterator[list[dict]]:
  """The conversations that pass `chat.normalize`; the others are counted in `skipped` by reason."""
  for conv in conversations:
    try:
      normalize(conv)
    except InvalidConversation as e:
      skipped[e.reason] += 1
      continue
    yield conv["messages"] if isinstance(conv, dict) else conv


def read_jsonl(pattern: str, skipped: collections.Counter) -> Iterator:
  """Raw conversations from JSONL files matching `pattern` (a glob, file or folder); unparsable lines
  are counted as skipped['bad_json']."""
  paths = sorted(glob.glob(os.path.join(pattern, "*.jsonl")) if os.path.isdir(pattern) else glob.glob(pattern))
  if not paths:
    raise FileNotFoundError(f"no JSONL files match {pattern!r}")
  for path in paths:
    with open(path, encoding="utf-8") as f:
      for line in f:
        if not line.strip():
          continue
        try:
          yield json.loads(line)
        except json.JSONDecodeError:
          skipped["bad_json"] += 1


def write_jsonl(path: str, conversations: Iterable) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    for conv in conversations:
      f.write(json.dumps({"messages": conv}, ensure_ascii=False) + "\n")


def oasst_threads(rows: Iterable[dict], lang: str | None = "en") -> list[list[dict]]:
  """oasst1 message rows (message_id, parent_id, role prompter|assistant, text, rank, lang, deleted)
  -> one thread per conversation tree, following the best-ranked reply at every turn."""
  by_parent, roots = collections.defaultdict(list), []
  for r in rows:
    if r.get("deleted") or (lang and r.get("lang") != lang):
      continue
    (roots if r.get("parent_id") is None else by_parent[r["parent_id"]]).append(r)
  threads = []
  for root in roots:
    thread, node = [], root
    while node is not None:
      thread.append({"role": "user" if node["role"] == "prompter" else "assistant", "content": node["text"]})
      children = by_parent.get(node["message_id"], [])
      node = min(children, key=lambda c: (c.get("rank") is None, c.get("rank") or 0), default=None)
    if thread and thread[-1]["role"] == "user":
      thread.pop()  # a question nobody answered
    if thread:
      threads.append(thread)
  return threads


def load_hf(name: str, max_items: int = 0) -> list:
  """Raw conversations of one of HF_SETS (imports `datasets` here; one-line error when offline)."""
  if name not in HF_SETS:
    raise ValueError(f"unknown HF chat set {name!r}; known: {', '.join(HF_SETS)} (or use files:<glob>)")
  try:
    import datasets  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise RuntimeError(f"hf:{name} needs the `datasets` package (pip install datasets) and network access; "
                       "offline, export the conversations to JSONL and use files:<glob>") from None
  path, subset, split = HF_SETS[name]
  try:
    rows = datasets.load_dataset(path, subset, split=split, streaming=True)
    rows = list(itertools.islice(rows, max_items or None))
  except Exception as e:  # pylint: disable=broad-except  (offline, renamed, ...)
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise RuntimeError(f"hf:{name} ({path}) could not be loaded (offline?): {reason}") from None
  if name == "oasst1":
    return oasst_threads(rows)
  return [r["messages"] for r in rows]


def parse_mixture(spec: str) -> list[tuple[str, float]]:
  """'identity@0.2,files:a/*.jsonl' -> [('identity', 0.2), ('files:a/*.jsonl', 1.0)]."""
  parts = []
  for part in (p.strip() for p in spec.split(",")):
    if not part:
      continue
    name, _, weight = part.rpartition("@") if "@" in part else (part, "", "1")
    try:
      w = float(weight)
    except ValueError:
      raise ValueError(f"bad weight {weight!r} in mixture part {part!r}; write name@0.5") from None
    kind = name.split(":", 1)[0]
    if name not in tasks_lib.TASKS and kind not in ("files", "hf") or w <= 0:
      raise ValueError(f"bad mixture part {part!r}: use a task ({', '.join(tasks_lib.TASKS)}), files:<glob> "
                       "or hf:<name>, with a weight > 0")
    parts.append((name, w))
  if not parts:
    raise ValueError("the conversation mixture is empty")
  return parts


def _finite(name: str, n: int, split: str, val_fraction: float, skipped: collections.Counter) -> list:
  """The valid conversations of a files:/hf: part that fall in `split` (HF sets: about enough rows for n)."""
  kind, _, arg = name.partition(":")
  want = "test" if split != "train" else "train"
  if kind == "files":
    raw = read_jsonl(arg, skipped)
  else:
    share = val_fraction if want == "test" else 1 - val_fraction
    raw = load_hf(arg, max_items=int(1.2 * n / share) + 100)
  return [c for c in valid(raw, skipped) if split_of(json.dumps(c, sort_keys=True), val_fraction) == want]


def _shares(total: int, weights: np.ndarray) -> np.ndarray:
  """int counts proportional to `weights` that sum to exactly `total` (largest remainders round up)."""
  exact = total * weights / weights.sum()
  counts = np.floor(exact).astype(int)
  counts[np.argsort(-(exact - counts), kind="stable")[:total - counts.sum()]] += 1
  return counts


def mixture(spec: str, total: int, split: str = "train", *, seed: int = 0, task_cfg=None,
            val_fraction: float = 0.05) -> tuple[list[list[dict]], dict]:
  """`total` conversations mixed as `spec` says, shuffled by `seed`, and a report
  {part: {requested, available, passes}, skipped: {reason: count}}. split: "train" or "test"."""
  parts = parse_mixture(spec)
  counts = _shares(total, np.array([w for _, w in parts], np.float64))
  rng = np.random.default_rng([seed, int(split == "train")])
  out, report, skipped = [], {}, collections.Counter()
  for (name, _), n in zip(parts, counts):
    if n == 0:
      continue
    if name in tasks_lib.TASKS:
      convs = tasks_lib.make_task(name, task_cfg, seed).conversations(split, int(n))
      report[name] = {"requested": int(n), "available": int(n), "passes": 1}
    else:
      pool = _finite(name, int(n), split, val_fraction, skipped)
      if not pool:
        raise ValueError(f"mixture part {name!r} has no valid {split} conversations (skipped: {dict(skipped)})")
      passes = -(-int(n) // len(pool))
      convs = [pool[i] for _ in range(passes) for i in rng.permutation(len(pool))][:n]
      report[name] = {"requested": int(n), "available": len(pool), "passes": passes}
    out += convs
  order = rng.permutation(len(out))
  report["skipped"] = dict(skipped)
  return [out[i] for i in order], report
