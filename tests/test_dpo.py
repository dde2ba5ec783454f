"""DPO: sigmoid and IPO losses against hand computations, and a tiny model raising the chosen-over-
rejected margin on a toy set, with the reference log-probabilities cached on disk."""

import glob
import math
import os

import ml_collections
import numpy as np
import pytest

from llm_jax.data.preferences import Ranking
from llm_jax.posttrain import dpo
from test_preferences import TOK, tiny_cfg, tiny_sft_stage

softplus = lambda x: math.log1p(math.exp(x))


def test_losses_by_hand():
  pc, pr, rc, rr = (np.array([v], np.float32) for v in (-1.0, -2.0, -1.5, -1.5))  # h = 0.5 + 0.5 = 1
  loss, chosen, rejected = dpo.preference_loss(pc, pr, rc, rr, beta=0.5)
  assert float(loss[0]) == pytest.approx(softplus(-0.5), rel=1e-5)  # -log sigmoid(beta * h)
  assert (float(chosen[0]), float(rejected[0])) == pytest.approx((0.25, -0.25))
  loss, _, _ = dpo.preference_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=0.2)
  assert float(loss[0]) == pytest.approx(0.8 * softplus(-0.5) + 0.2 * softplus(0.5), rel=1e-5)
  loss, _, _ = dpo.preference_loss(pc, pr, rc, rr, beta=0.25, kind="ipo")
  assert float(loss[0]) == pytest.approx((1.0 - 1 / (2 * 0.25)) ** 2)
  with pytest.raises(ValueError, match="dpo.loss='kto'"):
    dpo.preference_loss(pc, pr, rc, rr, beta=0.5, kind="kto")


def toy_pairs(words):
  return [Ranking(({"role": "user", "content": f"tell me about {w}"},), (f"{w} is good", f"{w} is bad"))
          for w in words]


def test_dpo_raises_the_margin_and_caches_the_reference(tmp_path):
  wd = str(tmp_path)
  cfg = tiny_cfg()
  tiny_sft_stage(wd, cfg=cfg)
  cfg.dpo = dpo.default_config()
  cfg.dpo.update(dict(seq_len=64, beta=0.5))
  cfg.dpo.train.update(dict(steps=24, batch_size=8, lr=3e-3, warmup_steps=2, log_every=8, eval_every=24,
                            tensorboard=False))
  words = [f"w{i}{c}" for i in range(10) for c in "xyz"]
  summary = dpo.train_dpo(cfg, wd, TOK, toy_pairs(words[:24]), toy_pairs(words[24:]))
  with open(os.path.join(wd, "metrics", "dpo.jsonl")) as f:
    first = f.readline()
  assert '"val/reward_margin": 0.0' in first  # step 0: the policy is the reference
  assert summary["val/reward_margin"] > 0.5 and summary["val/reward_acc"] == 1.0, summary
  assert summary["val/chosen_logp"] > summary["val/rejected_logp"]
  cached = glob.glob(os.path.join(wd, "cache", "dpo_ref", "*.npy"))
  assert len(cached) == 2  # train and held-out pairs

  from llm_jax.data import preference_batches
  arrays = preference_batches.encode(toy_pairs(words[24:]), TOK, 64)
  fail = lambda batch: (_ for _ in ()).throw(AssertionError("recomputed"))
  ref = dpo.reference_logprobs(wd, arrays, "sft", 0, fail, 8)
  assert ref.shape == (6, 2) and np.all(ref < 0)


def test_preference_pairs_all_or_best_and_worst():
  prompt = ({"role": "user", "content": "q"},)
  rankings = [Ranking(prompt, ("a", "b", "c")), Ranking(prompt, ("x", "y", "x"))]
  assert [(p.chosen, p.rejected) for p in dpo.preference_pairs(rankings, "all")] == [
      ("a", "b"), ("a", "c"), ("b", "c"), ("x", "y"), ("x", "x"), ("y", "x")]
  # best vs worst; a ranking whose ends are the same reply teaches nothing and is left out
  assert [(p.chosen, p.rejected) for p in dpo.preference_pairs(rankings, "best_worst")] == [("a", "c")]
  with pytest.raises(ValueError, match="dpo.pairs"):
    dpo.preference_pairs(rankings, "random")


def test_nll_on_the_chosen_reply_adds_to_the_loss():
  dc = ml_collections.ConfigDict(dict(beta=0.5, loss="sigmoid", label_smoothing=0.0, nll_coef=0.2))
  logp, ref = np.array([[-4.0, -6.0]], np.float32), np.array([[-5.0, -5.0]], np.float32)
  batch = {"loss_mask": np.array([[[0, 0, 1, 1], [0, 1, 1, 1]]], np.float32)}  # the chosen reply: 2 tokens
  sums = dpo.pair_sums(logp, ref, np.ones((1, 2), bool), dpo.chosen_tokens(batch), dc)
  # h = (-4 + 5) - (-6 + 5) = 2: softplus(-beta * h), plus 0.2 * NLL per token (4 / 2)
  assert float(sums["loss"]) == pytest.approx(softplus(-1.0) + 0.2 * 2.0, rel=1e-5)
  assert float(sums["chosen_nll"]) == pytest.approx(2.0)
