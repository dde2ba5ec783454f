"""Contamination probes: does the model know a benchmark's *order*, which only memorisation explains?

`order_test` follows Oren et al. (2023, "Proving test set contamination in black box language
models"): items are exchangeable, so an uncontaminated model gives their published order the same
likelihood as a shuffled one. The set is cut into shards of a few items; each shard is scored in its
original order and in `num_shuffles` random orders; the p-value is the share of shuffles whose total
log-likelihood reaches the original's (a permutation test). A small p-value and a positive gap mean the
model has seen the set in order.

`choice_order_test` scores multiple-choice accuracy with the original and with shuffled choice orders:
a model that memorised answer positions (not answers) loses accuracy under shuffling. It suits
continuation-style items (ARC, HellaSwag); lettered items (MMLU) list their options in the context, which
this does not reorder.
"""

from collections.abc import Sequence

import numpy as np

from llm_jax.eval import multiple_choice


def order_test(items: Sequence[str], tokenizer, loglikelihood: multiple_choice.LogLikelihood, *,
               shard_size: int = 4, num_shuffles: int = 19, seed: int = 0, separator: str = "\n\n") -> dict:
  """{logprob_original, logprob_shuffled, gap, p_value, shards} (log-likelihoods summed over shards;
  gap = original - mean shuffled). Items are tokenized one by one, so every order has the same tokens."""
  ids = [tokenizer.encode(t) for t in items]
  sep = tokenizer.encode(separator)
  shards = [list(range(i, min(i + shard_size, len(ids)))) for i in range(0, len(ids), shard_size)]
  shards = [s for s in shards if len(s) > 1]
  if not shards or num_shuffles < 1:
    raise ValueError("the order test needs at least 2 items per shard and num_shuffles >= 1")
  rng = np.random.default_rng(seed)
  requests = []
  for shard in shards:
    for order in [shard] + [list(rng.permutation(shard)) for _ in range(num_shuffles)]:
      seq = [tok for k, i in enumerate(order) for tok in (sep if k else []) + ids[i]]
      requests.append(([tokenizer.bos_id], seq))
  scores_SxR = np.asarray(loglikelihood(requests), np.float64).reshape(len(shards), num_shuffles + 1)
  original, shuffled_R = scores_SxR[:, 0].sum(), scores_SxR[:, 1:].sum(axis=0)
  return {"logprob_original": float(original), "logprob_shuffled": float(shuffled_R.mean()),
          "gap": float(original - shuffled_R.mean()),
          "p_value": float((1 + (shuffled_R >= original).sum()) / (1 + num_shuffles)), "shards": len(shards)}


def shuffle_choices(items: Sequence[dict], seed: int = 0) -> list[dict]:
  """The items with their choices in a random order (answers re-indexed)."""
  rng, out = np.random.default_rng(seed), []
  for item in items:
    perm = rng.permutation(len(item["choices"]))
    out.append({**item, "choices": [item["choices"][j] for j in perm],
                "answer": int(np.flatnonzero(perm == item["answer"])[0])})
  return out


def choice_order_test(items: Sequence[dict], tokenizer, loglikelihood: multiple_choice.LogLikelihood, *,
                      seed: int = 0) -> dict:
  """{acc_original, acc_shuffled, gap}: accuracy with the original vs shuffled choice orders."""
  original = multiple_choice.evaluate(items, tokenizer, loglikelihood)["acc"]
  shuffled = multiple_choice.evaluate(shuffle_choices(items, seed), tokenizer, loglikelihood)["acc"]
  return {"acc_original": original, "acc_shuffled": shuffled, "gap": original - shuffled}
