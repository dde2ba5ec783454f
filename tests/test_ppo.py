"""PPO for RLHF: GAE on a hand-computed trajectory, rewards, clipped losses, the KL controller, the stopping
rule, and two PPO steps of a tiny policy against a tiny reward model, end to end."""

import json
import math
import os

import jax
import ml_collections
import numpy as np
import pytest

from llm_jax.data.preferences import Ranking
from llm_jax.infer.load import load_stage
from llm_jax.posttrain import ppo, reward_model, rlhf, stopping
from llm_jax.tasks.base import Example
from test_preferences import PROMPT, TOK, tiny_cfg, tiny_sft_stage


def test_gae_by_hand():
  rewards = np.array([[0.0, 0.1, -0.2, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 2.0]], np.float32)
  values = np.array([[9.0, 0.5, 0.4, 0.3, 7.0], [1.0, 1.0, 1.0, 1.0, 1.5]], np.float32)
  mask = np.array([[0, 1, 1, 1, 0], [0, 0, 0, 0, 1]], np.float32)
  adv, ret = jax.jit(ppo.gae)(rewards, values, mask, 0.9, 0.8)
  a3 = 1.0 - 0.3  # last action: no next value
  a2 = (-0.2 + 0.9 * 0.3 - 0.4) + 0.9 * 0.8 * a3
  a1 = (0.1 + 0.9 * 0.4 - 0.5) + 0.9 * 0.8 * a2
  np.testing.assert_allclose(adv, [[0, a1, a2, a3, 0], [0, 0, 0, 0, 2.0 - 1.5]], atol=1e-6)
  np.testing.assert_allclose(ret, [[0, a1 + 0.5, a2 + 0.4, a3 + 0.3, 0], [0, 0, 0, 0, 2.0]], atol=1e-6)
  r = ppo.token_rewards(np.full((2, 5), 0.5, np.float32), np.array([3.0, -1.0], np.float32), mask, 0.1)
  np.testing.assert_allclose(r, [[0, -0.05, -0.05, 2.95, 0], [0, 0, 0, 0, -1.05]], atol=1e-6)


def test_clipped_losses_by_hand():
  batch = {"mask": np.array([[1.0, 0.0]]), "adv": np.array([[1.0, 5.0]]), "old_logp": np.zeros((1, 2)),
           "old_values": np.array([[1.0, 0.0]]), "returns": np.zeros((1, 2))}
  pg, vf, m = ppo.ppo_losses(np.log(np.array([[1.5, 9.0]])), np.array([[2.0, 9.0]]), batch, 0.2, 0.5)
  assert float(pg) == pytest.approx(-1.2)  # max(-1 * 1.5, -1 * clip(1.5, 0.8, 1.2))
  assert float(vf) == pytest.approx(0.5 * max(2.0 ** 2, 1.5 ** 2))
  assert float(m["rl/clip_frac"]) == 1.0 and float(m["rl/approx_kl"]) == pytest.approx(0.5 - math.log(1.5), rel=1e-5)


def test_kl_controller():
  kc = ppo.kl_config()
  assert ppo.update_kl_coef(0.1, 100.0, 64, kc) == 0.1  # fixed
  kc.update(dict(adaptive=True, target=6.0, horizon=1000))
  assert ppo.update_kl_coef(0.1, 12.0, 100, kc) == pytest.approx(0.1 * 1.02)  # error clipped to +0.2
  assert ppo.update_kl_coef(0.1, 3.0, 100, kc) == pytest.approx(0.1 * 0.98)  # ... and to -0.2
  assert ppo.update_kl_coef(0.1, 6.6, 100, kc) == pytest.approx(0.1 * 1.01)  # proportional inside


def test_stop_rule():
  cfg = stopping.default_config()
  cfg.kl_budget = 5.0
  assert stopping.StopRule(cfg)(3, {"val/kl_seq": 6.0}).startswith("held-out KL 6 nats exceeds")
  cfg.update(dict(kl_budget=0.0, check="gold", patience=2))
  rule = stopping.StopRule(cfg)
  seq = [(0.1, 0.0), (0.5, 1.0), (0.4, 2.0), (0.45, 0.9), (0.3, 3.0), (0.2, 4.0)]  # (check, proxy)
  got = [rule(i, {"val/check_mean": c, "val/reward_mean": p}) for i, (c, p) in enumerate(seq)]
  assert got[:5] == [None] * 5 and "fell to 0.2 (best 0.5) for 2 evaluations" in got[5]


class Greetings:
  """A tiny task: short prompts (no answers)."""
  name = "greetings"

  def examples(self, split, n):
    words = ["hi", "yo", "hey", "hello", "sup", "hiya"] if split == "train" else ["howdy", "heya"]
    return [Example(({"role": "user", "content": words[i % len(words)]},), "", None, str(i)) for i in range(n)]


def test_ppo_runs_end_to_end(tmp_path):
  wd = str(tmp_path)
  cfg = tiny_cfg()
  tiny_sft_stage(wd, cfg=cfg)
  cfg.reward_model = reward_model.default_config()
  cfg.reward_model.update(dict(seq_len=64, head_init_std=0.5))
  cfg.reward_model.train.update(dict(steps=0, tensorboard=False))
  # 0 steps: a reward model of the SFT backbone and a random head
  reward_model.train_reward_model(cfg, wd, TOK, [Ranking(PROMPT, ("a", "b"))], [])
  cfg.rlhf = rlhf.default_config()
  cfg.rlhf.update(dict(max_prompt_len=16, max_new_tokens=12, prompts_per_step=4, epochs=1, minibatches=1,
                       eval_prompts=4))
  cfg.rlhf.kl.update(dict(adaptive=True, target=1.0, horizon=10))
  cfg.rlhf.train.update(dict(steps=2, lr=1e-3, eval_every=2, tensorboard=False))
  gold_cfg = ml_collections.ConfigDict(dict(marker=0.5, length=0.0, min_words=0, max_words=0, repetition=1.0,
                                            target_word="", correct=1.0))
  summary = rlhf.train_ppo(cfg, wd, TOK, gold_cfg=gold_cfg, task=Greetings())
  assert summary["steps"] == 2
  for key in ("rl/reward_mean", "rl/kl", "rl/kl_seq", "rl/response_len", "rl/clip_frac", "rl/value_loss",
              "rl/gold_mean", "val/reward_mean", "val/kl_seq", "val/gold_mean"):
    assert np.isfinite(summary[key]), key
  assert summary["rl/kl_coef"] != cfg.rlhf.kl.coef  # the adaptive controller moved it after step 1
  with open(os.path.join(wd, "samples", "rlhf_eval.jsonl")) as f:
    steps = [json.loads(line)["step"] for line in f]
  assert steps == [0] * 4 + [2] * 4  # before training and at the end, 4 held-out prompts each
  graphdef, params, _, _ = load_stage(wd, "rlhf")  # the policy loads like any stage
  assert jax.tree.structure(params) == jax.tree.structure(load_stage(wd, "sft")[1])
