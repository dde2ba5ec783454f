"""Multiple choice by log-likelihood: the choice the model finds most likely after the context wins.

Items share one schema {"context": str, "choices": [str], "answer": int}; each choice is the
continuation appended to the context (with its leading space). MMLU, ARC and HellaSwag rows convert to
it (MMLU as lettered options answered " A".." D"); local JSONL may hold either the schema or those
datasets' own rows. Scores: `acc` (highest summed log-probability) and `acc_norm` (highest
log-probability per UTF-8 byte of the choice, which does not favour short choices).
"""

import json
import re
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

LETTERS = "ABCDEFGHIJ"
# name -> (dataset, subset, split, converter name)
HF_SETS = {"mmlu": ("cais/mmlu", "all", "test", "mmlu"), "arc_easy": ("allenai/ai2_arc", "ARC-Easy", "test", "arc"),
           "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "test", "arc"),
           "hellaswag": ("Rowan/hellaswag", None, "validation", "hellaswag")}
LogLikelihood = Callable[[Sequence[tuple[list[int], list[int]]]], list[float]]


def from_mmlu(row: dict) -> dict:
  options = "".join(f"{LETTERS[i]}. {c}\n" for i, c in enumerate(row["choices"]))
  return {"context": f"{row['question'].strip()}\n{options}Answer:",
          "choices": [f" {LETTERS[i]}" for i in range(len(row["choices"]))], "answer": int(row["answer"])}


def from_arc(row: dict) -> dict:
  labels = list(row["choices"]["label"])
  return {"context": f"Question: {row['question'].strip()}\nAnswer:",
          "choices": [f" {t}" for t in row["choices"]["text"]], "answer": labels.index(row["answerKey"])}


def _clean_hellaswag(text: str) -> str:
  text = text.strip().replace(" [title]", ". ")
  return re.sub(r"\s+", " ", re.sub(r"\[.*?\]", "", text)).strip()


def from_hellaswag(row: dict) -> dict:
  context = _clean_hellaswag(f"{row['activity_label']}: {row['ctx']}")
  return {"context": context, "choices": [" " + _clean_hellaswag(e) for e in row["endings"]],
          "answer": int(row["label"])}


def to_item(row: dict) -> dict:
  """The schema from a schema row or an MMLU / ARC / HellaSwag row; ValueError if it is neither."""
  if {"context", "choices", "answer"} <= set(row):
    item = {"context": row["context"], "choices": list(row["choices"]), "answer": int(row["answer"])}
  elif "endings" in row:
    item = from_hellaswag(row)
  elif "answerKey" in row:
    item = from_arc(row)
  elif {"question", "choices", "answer"} <= set(row):
    item = from_mmlu(row)
  else:
    raise ValueError(f"not a multiple-choice row (keys {sorted(row)})")
  if len(item["choices"]) < 2 or not 0 <= item["answer"] < len(item["choices"]):
    raise ValueError(f"answer {item['answer']} is not an index of {len(item['choices'])} choices")
  return item


def read_items(path: str, limit: int = 0) -> list[dict]:
  with open(path, encoding="utf-8") as f:
    items = [to_item(json.loads(line)) for line in f if line.strip()]
  return items[:limit] if limit else items


def load_hf_items(name: str, limit: int = 0) -> list[dict]:
  """Items of one of HF_SETS (imports `datasets` here; a one-line error when offline)."""
  if name not in HF_SETS:
    raise ValueError(f"unknown multiple-choice set {name!r}; known: {', '.join(HF_SETS)} (or a local .jsonl)")
  path, subset, split, _ = HF_SETS[name]
  try:
    import datasets  # pylint: disable=g-import-not-at-top
    rows = datasets.load_dataset(path, subset, split=split)
  except Exception as e:  # pylint: disable=broad-except  (not installed, offline, ...)
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    raise RuntimeError(f"{name} ({path}) could not be loaded (needs `datasets` and network): {reason}; "
                       "use a local JSONL in the same schema instead") from None
  rows = rows.select(range(min(limit, len(rows)))) if limit else rows
  return [to_item(dict(r)) for r in rows]


def _bucket(n: int, cap: int) -> int:
  return min(max(16, 1 << (n - 1).bit_length()), cap)


def make_loglikelihood(graphdef, params, max_len: int, batch_size: int = 8) -> LogLikelihood:
  """A LogLikelihood for a model: sum of log p(continuation | context) per (context ids, continuation
  ids) request. Contexts are cut from the left to fit max_len; lengths are bucketed (few compiles)."""

  @jax.jit
  def score(params, tokens_BxT, targets_BxT, mask_BxT):
    model = nnx.merge(graphdef, params)
    positions_BxT = jnp.broadcast_to(jnp.arange(tokens_BxT.shape[1]), tokens_BxT.shape)
    logits_BxTxV, _ = model(tokens_BxT, positions_BxT)
    logp_BxTxV = jax.nn.log_softmax(logits_BxTxV.astype(jnp.float32), axis=-1)
    target_BxT = jnp.take_along_axis(logp_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]
    return (target_BxT * mask_BxT).sum(-1)

  def loglikelihood(requests):
    out = []
    for start in range(0, len(requests), batch_size):
      chunk = requests[start:start + batch_size]
      seqs = []
      for context, continuation in chunk:
        if not context or not continuation or len(continuation) > max_len:
          raise ValueError(f"need a non-empty context and a continuation of 1..{max_len} tokens; got "
                           f"{len(context)} and {len(continuation)}")
        seq = (list(context) + list(continuation))[-(max_len + 1):]
        seqs.append((seq, len(continuation)))
      T = _bucket(max(len(s) - 1 for s, _ in seqs), max_len)
      tokens, targets, mask = (np.zeros((batch_size, T), np.int32) for _ in range(3))
      for b, (seq, n) in enumerate(seqs):
        L = len(seq) - 1
        tokens[b, :L], targets[b, :L] = seq[:-1], seq[1:]
        mask[b, L - n:L] = 1
      out += np.asarray(score(params, tokens, targets, mask.astype(np.float32)))[:len(chunk)].tolist()
    return out

  return loglikelihood


def evaluate(items: Sequence[dict], tokenizer, loglikelihood: LogLikelihood, *, add_bos: bool = True) -> dict:
  """{acc, acc_norm, n} of `items` under `loglikelihood`, and per-item `predictions` (index, by acc)."""
  prefix = [tokenizer.bos_id] if add_bos else []
  requests = []
  for item in items:
    context = prefix + tokenizer.encode(item["context"])
    requests += [(context, tokenizer.encode(choice)) for choice in item["choices"]]
  scores = np.asarray(loglikelihood(requests), np.float64)
  correct, correct_norm, predictions, k = 0, 0, [], 0
  for item in items:
    s = scores[k:k + len(item["choices"])]
    k += len(item["choices"])
    per_byte = s / np.array([max(len(c.encode()), 1) for c in item["choices"]])
    predictions.append(int(np.argmax(s)))
    correct += predictions[-1] == item["answer"]
    correct_norm += int(np.argmax(per_byte)) == item["answer"]
  n = max(len(items), 1)
  return {"acc": correct / n, "acc_norm": correct_norm / n, "n": len(items), "predictions": predictions}
