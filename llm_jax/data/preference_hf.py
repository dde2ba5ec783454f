"""Hugging Face preference sets -> Rankings (`datasets` is imported only when a set is loaded).

  hh                       Anthropic/hh-rlhf: `chosen` / `rejected` transcripts ("\\n\\nHuman: ..
                           \\n\\nAssistant: ..") sharing every turn but the last reply -> a pair
  ultrafeedback            openbmb/UltraFeedback: `instruction` and 4 `completions` with ratings ->
                           a ranking of 4 by overall score (ties keep the listed order)
  ultrafeedback_binarized  HuggingFaceH4/ultrafeedback_binarized: `chosen` / `rejected` message lists
                           -> a pair
The parsers are plain functions of one row, so they are tested offline on hand-written rows.
"""

import collections
import itertools
import re

from llm_jax.data.preferences import Ranking

# name -> (dataset, train split, test split or None: a hash split of train)
HF_SETS = {"hh": ("Anthropic/hh-rlhf", "train", "test"),
           "ultrafeedback": ("openbmb/UltraFeedback", "train", None),
           "ultrafeedback_binarized": ("HuggingFaceH4/ultrafeedback_binarized", "train_prefs", "test_prefs")}
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


def hh_messages(transcript: str) -> list[dict]:
  """'\\n\\nHuman: a\\n\\nAssistant: b' -> [{user: a}, {assistant: b}] (text before the first turn dropped)."""
  parts = _HH_TURN.split(transcript if transcript.startswith("\n\n") else "\n\n" + transcript)
  roles = {"Human": "user", "Assistant": "assistant"}
  return [{"role": roles[who], "content": text.strip()} for who, text in zip(parts[1::2], parts[2::2])]


def parse_hh(row: dict) -> Ranking | None:
  """An hh-rlhf row -> a pair, or None when the two transcripts do not share their prompt or a reply is empty."""
  chosen, rejected = hh_messages(row["chosen"]), hh_messages(row["rejected"])
  if not chosen or chosen[-1]["role"] != "assistant" or not rejected or rejected[-1]["role"] != "assistant":
    return None
  prompt = chosen[:-1]
  if prompt != rejected[:-1] or not prompt or prompt[-1]["role"] != "user":
    return None
  if not chosen[-1]["content"] or not rejected[-1]["content"] or chosen[-1]["content"] == rejected[-1]["content"]:
    return None
  return Ranking(tuple(prompt), (chosen[-1]["content"], rejected[-1]["content"]))


def parse_ultrafeedback(row: dict) -> Ranking | None:
  """An openbmb/UltraFeedback row -> replies ranked by `overall_score` (None: fewer than two distinct scores)."""
  scored = [(c.get("overall_score"), c.get("response", "")) for c in row.get("completions", [])]
  scored = [(float(s), r) for s, r in scored if s is not None and r and r.strip()]
  if len({s for s, _ in scored}) < 2:
    return None
  ranked = sorted(scored, key=lambda x: -x[0])  # stable: ties keep the listed order
  return Ranking(({"role": "user", "content": row["instruction"]},), tuple(r for _, r in ranked),
                 tuple(s for s, _ in ranked))


def parse_binarized(row: dict) -> Ranking | None:
  """An ultrafeedback_binarized row (chosen/rejected message lists) -> a pair."""
  chosen, rejected = row["chosen"], row["rejected"]
  if not chosen or not rejected or chosen[:-1] != rejected[:-1] or chosen[-1]["role"] != "assistant":
    return None
  if chosen[-1]["content"] == rejected[-1]["content"] or not chosen[:-1]:
    return None
  scores = (row.get("score_chosen"), row.get("score_rejected"))
  return Ranking(tuple(chosen[:-1]), (chosen[-1]["content"], rejected[-1]["content"]),
                 tuple(map(float, scores)) if None not in scores else None)


PARSERS = {"hh": parse_hh, "ultrafeedback": parse_ultrafeedback, "ultrafeedback_binarized": parse_binarized}


def parse_rows(name: str, rows, skipped: collections.Counter) -> list[Ranking]:
  out = []
  for row in rows:
    try:
      ranking = PARSERS[name](row)
    except (KeyError, TypeError, AttributeError, IndexError):  # a row without the set's fields
      skipped[f"{name}_malformed"] += 1
      continue
    if ranking is None:
      skipped[f"{name}_unusable"] += 1
    else:
      out.append(ranking)
  return out


def load_hf(name: str, split: str = "train", max_items: int = 0,
            skipped: collections.Counter | None = None) -> list[Ranking]:
  """Rankings of one of HF_SETS' `split` ("train" or "test"; a set without a test split gives None
  here and is hash-split by the caller). One-line RuntimeError when `datasets` or the network is missing."""
  if name not in HF_SETS:
    raise ValueError(f"unknown preference set {name!r}; known: {', '.join(HF_SETS)} (or use jsonl:<glob>)")
  path, train_split, test_split = HF_SETS[name]
  hf_split = train_split if split == "train" else test_split
  if hf_split is None:
    raise ValueError(f"preference set {name!r} has no test split; hash-split its train split instead")
  try:
    import datasets  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise RuntimeError(f"hf:{name} needs the `datasets` package (pip install datasets) and network access; "
                       "offline, write the preferences as JSONL and use jsonl:<glob>") from None
  try:
    rows = itertools.islice(datasets.load_dataset(path, split=hf_split, streaming=True), max_items or None)
    return parse_rows(name, rows, skipped if skipped is not None else collections.Counter())
  except Exception as e:  # pylint: disable=broad-except  (offline, renamed, ...)
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise RuntimeError(f"hf:{name} ({path}) could not be loaded (offline?): {reason}") from None
