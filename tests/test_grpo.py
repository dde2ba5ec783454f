"""GRPO math against hand-computed values: advantages, aggregation modes, asymmetric clipping, KL
estimators, zero-variance groups, truncation, and the batch layout (prompt, padding and forced tokens
carry no loss)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.infer.tool_engine import Completion
from llm_jax.posttrain import grpo
from llm_jax.posttrain.rollouts import Rollouts, build_batch, to_batch

REWARDS = np.array([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]], np.float32)
# one compiled program per call signature instead of one per jnp op (compiles dominate on CPU)
policy_loss = jax.jit(grpo.policy_loss, static_argnames=("eps_low", "eps_high", "agg", "max_len", "kl_coef",
                                                         "kl_estimator"))


def test_group_advantages_by_scale():
  centred = np.array([[0.5, -0.5, -0.5, 0.5], [0, 0, 0, 0], [0.25, 0.25, 0.25, -0.75]])
  np.testing.assert_allclose(grpo.group_advantages(REWARDS, "none"), centred, atol=1e-6)
  group_std = np.array([[0.5], [0.0], [np.sqrt(0.1875)]])
  np.testing.assert_allclose(grpo.group_advantages(REWARDS, "group"), centred / (group_std + 1e-6), rtol=1e-5)
  np.testing.assert_allclose(grpo.group_advantages(REWARDS, "group")[0], [1, -1, -1, 1], atol=1e-5)
  batch_std = np.sqrt(5 / 12 * 7 / 12)  # 5 ones among 12 rewards
  np.testing.assert_allclose(grpo.group_advantages(REWARDS, "batch"), centred / batch_std, rtol=1e-5)
  with pytest.raises(ValueError, match="advantage scale"):
    grpo.group_advantages(REWARDS, "rank")


def test_aggregation_modes():
  logp = jnp.zeros((2, 3))
  mask = jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
  adv = jnp.array([1.0, 2.0])  # ratio 1: per-token loss is -adv, i.e. [[-1, -1, x], [-2, x, x]]
  loss = lambda agg: float(policy_loss(logp, logp, adv, mask, agg=agg, max_len=4)[0])
  assert loss("token") == pytest.approx(-4 / 3)  # all tokens weigh the same (DAPO)
  assert loss("sequence") == pytest.approx(-1.5)  # mean of row means (GRPO)
  assert loss("constant") == pytest.approx(-4 / (2 * 4))  # / (rows * max_len) (Dr. GRPO)
  with pytest.raises(ValueError, match="aggregation"):
    loss("mean")


def test_asymmetric_clipping_values_and_gradients():
  ratios = jnp.array([[1.5, 0.5, 1.1, 0.75], [1.5, 0.5, 1.1, 0.75]])
  old = jnp.zeros((2, 4))
  adv, mask = jnp.array([1.0, -1.0]), jnp.ones((2, 4))
  loss, metrics = policy_loss(jnp.log(ratios), old, adv, mask, eps_low=0.2, eps_high=0.28)
  # adv > 0: min(r, clip(r)) = 1.28, 0.5, 1.1, 0.75; adv < 0: min(-r, -clip(r)) = -1.5, -0.8, -1.1, -0.8
  want = np.array([[-1.28, -0.5, -1.1, -0.75], [1.5, 0.8, 1.1, 0.8]])
  assert float(loss) == pytest.approx(want.mean(), abs=1e-6)
  assert float(metrics["rl/clip_frac"]) == pytest.approx(3 / 8)  # 1.5 (adv > 0), 0.5 and 0.75 (adv < 0)
  wider = policy_loss(jnp.log(ratios), old, adv, mask, eps_low=0.3, eps_high=0.28)[1]["rl/clip_frac"]
  assert float(wider) == pytest.approx(2 / 8)  # 0.75 is inside [0.7, 1.28]
  grad = jax.grad(lambda lp: policy_loss(lp, old, adv, mask, eps_low=0.2, eps_high=0.28)[0])(jnp.log(ratios))
  clipped = np.array([[1, 0, 0, 0], [0, 1, 0, 1]], bool)
  assert np.all(np.asarray(grad)[clipped] == 0) and np.all(np.asarray(grad)[~clipped] != 0)


def test_kl_estimators_and_penalty():
  logp, ref = jnp.array([[-1.0, -2.0]]), jnp.array([[-1.5, -1.0]])
  np.testing.assert_allclose(grpo.kl_estimate(logp, ref, "k1"), [[0.5, -1.0]], rtol=1e-6)
  log_r = np.array([[-0.5, 1.0]])
  np.testing.assert_allclose(grpo.kl_estimate(logp, ref, "k3"), np.exp(log_r) - log_r - 1, rtol=1e-6)
  assert float(grpo.kl_estimate(logp, logp, "k3").sum()) == 0.0
  mask, adv = jnp.ones((1, 2)), jnp.array([1.0])
  base, m0 = policy_loss(logp, logp, adv, mask)
  with_kl, m1 = policy_loss(logp, logp, adv, mask, ref_logp_BxT=ref, kl_coef=0.1, kl_estimator="k3")
  k3_mean = float((np.exp(log_r) - log_r - 1).mean())
  assert float(with_kl - base) == pytest.approx(0.1 * k3_mean, rel=1e-5)
  assert "rl/kl" not in m0 and float(m1["rl/kl"]) == pytest.approx(k3_mean, rel=1e-5)
  with pytest.raises(ValueError, match="kl estimator"):
    grpo.kl_estimate(logp, ref, "k2")


def test_zero_variance_and_truncation():
  assert grpo.zero_variance(REWARDS).tolist() == [False, True, False]
  truncated = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], bool)
  rewards, weights = grpo.apply_truncation(REWARDS, truncated, "mask")
  assert np.array_equal(rewards, REWARDS) and weights.tolist() == (~truncated).astype(float).tolist()
  rewards, weights = grpo.apply_truncation(REWARDS, truncated, "penalty", penalty=0.5)
  assert rewards[0].tolist() == [1, -0.5, 0, 1] and rewards[2].tolist() == [0.5, 1, 1, 0] and weights.min() == 1
  assert np.array_equal(grpo.apply_truncation(REWARDS, truncated, "none")[0], REWARDS)
  with pytest.raises(ValueError, match="truncation"):
    grpo.apply_truncation(REWARDS, truncated, "drop")


def test_batch_layout_masks_prompt_padding_and_forced_tokens():
  c = Completion(ids=[7, 8, 9, 10, 2], forced=[False, True, True, False, False], calls=[], finished=True)
  batch = to_batch([[1, 5, 6]], [c], [0.5], seq_len=10)
  assert batch["tokens"][0].tolist() == [1, 5, 6, 7, 8, 9, 10, 0, 0, 0]
  assert batch["targets"][0].tolist() == [5, 6, 7, 8, 9, 10, 2, 0, 0, 0]
  # targets 7 (chosen), 8 and 9 (forced tool output), 10 and 2 (chosen); prompt and padding carry nothing
  assert batch["mask"][0].tolist() == [0, 0, 0.5, 0, 0, 0.5, 0.5, 0, 0, 0]
  assert batch["positions"][0].tolist() == list(range(10))


def test_build_batch_drops_zero_variance_groups_and_masks_truncated():
  done = lambda n, finished=True: Completion(ids=[3] * n, forced=[False] * n, calls=[], finished=finished)
  completions = [[done(2), done(3, finished=False), done(1), done(2)], [done(1)] * 4, [done(2)] * 4]
  ro = Rollouts(examples=[None] * 3, prompts=[[1], [1], [1]], completions=completions, texts=[[""] * 4] * 3,
                rewards=REWARDS, parts={"correct": REWARDS})
  host, metrics = build_batch(ro, 8, truncation="mask", drop_zero_variance=True, scale="none")
  rows = host["mask"].sum(axis=1).reshape(3, 4)
  assert rows[0].tolist() == [2, 0, 1, 2]  # the truncated reply carries no loss
  assert rows[1].tolist() == [0, 0, 0, 0]  # all-zero group dropped
  assert rows[2].tolist() == [2, 2, 2, 2]
  assert host["completion"].sum() == 2 + 3 + 1 + 2 + 4 + 8
  np.testing.assert_allclose(host["adv"], grpo.group_advantages(REWARDS, "none").reshape(-1))
  assert metrics["rl/zero_var_frac"] == pytest.approx(1 / 3) and metrics["rl/truncated_frac"] == pytest.approx(1 / 12)
  assert metrics["rl/reward_mean"] == pytest.approx(5 / 12) and metrics["rl/tokens"] == 20
  kept = build_batch(ro, 8, drop_zero_variance=False)[0]["mask"].reshape(3, 4, 8).sum(axis=2)
  assert kept[1].tolist() == [1, 1, 1, 1]
  # dropping a group equals leaving its rows out of the token-mean loss
  logp = jnp.asarray(np.random.default_rng(0).normal(size=(12, 8)), jnp.float32)
  adv = jnp.asarray(host["adv"])
  full = policy_loss(logp, logp - 0.1, adv, jnp.asarray(host["mask"]))[0]
  keep = np.r_[0:4, 8:12]
  subset = policy_loss(logp[keep], logp[keep] - 0.1, adv[keep], jnp.asarray(host["mask"][keep]))[0]
  assert float(full) == pytest.approx(float(subset), rel=1e-6)
