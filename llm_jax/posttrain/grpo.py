"""GRPO's math as pure functions: group advantages, the clipped importance-weighted policy loss, KL
estimators, loss aggregation, zero-variance groups and truncated completions.

N prompts (groups) of G samples each give B = N*G rows; a row's T positions predict its targets, and
`mask_BxT` (float) marks the completion tokens that carry loss (0 on the prompt, padding, tokens the
engine forced, and rows left out). Advantages are per row, shared by its tokens.

  advantage  A_i = (r_i - mean(r_group)) / scale, scale = group std ("group", GRPO), the batch's std
             ("batch") or 1 ("none", Dr. GRPO); std is the population std (ddof 0), plus eps
  ratio      rho_t = exp(logp_t - old_logp_t), old = the policy that sampled the batch
  objective  min(rho_t A, clip(rho_t, 1 - eps_low, 1 + eps_high) A)  (separate eps: DAPO's clip-higher)
  KL         to a frozen reference: k1 = logp - ref_logp, k3 = exp(ref - logp) - (ref - logp) - 1
             (Schulman's unbiased, non-negative estimator); added per token as kl_coef * KL
  aggregate  "token": sum over all tokens / number of tokens (DAPO); "sequence": mean over rows of each
             row's token mean (GRPO); "constant": sum / (rows * max_len) (Dr. GRPO, no length bias)
"""

import jax.numpy as jnp
import numpy as np

ADVANTAGE_SCALES = ("group", "batch", "none")
AGGREGATIONS = ("token", "sequence", "constant")
KL_ESTIMATORS = ("k1", "k3")
TRUNCATIONS = ("none", "mask", "penalty")


def group_advantages(rewards_NxG: np.ndarray, scale: str = "group", eps: float = 1e-6) -> np.ndarray:
  """float32[N, G]: rewards centred on their group's mean, divided as `scale` says."""
  if scale not in ADVANTAGE_SCALES:
    raise ValueError(f"advantage scale {scale!r} is not one of {ADVANTAGE_SCALES}")
  rewards_NxG = np.asarray(rewards_NxG, np.float64)
  centred_NxG = rewards_NxG - rewards_NxG.mean(axis=1, keepdims=True)
  if scale == "group":
    centred_NxG = centred_NxG / (rewards_NxG.std(axis=1, keepdims=True) + eps)
  elif scale == "batch":
    centred_NxG = centred_NxG / (rewards_NxG.std() + eps)
  return centred_NxG.astype(np.float32)


def zero_variance(rewards_NxG: np.ndarray, tol: float = 1e-9) -> np.ndarray:
  """bool[N]: groups whose rewards are all equal (no learning signal; dropped when configured)."""
  rewards_NxG = np.asarray(rewards_NxG, np.float64)
  return rewards_NxG.max(axis=1) - rewards_NxG.min(axis=1) <= tol


def apply_truncation(rewards_NxG: np.ndarray, truncated_NxG: np.ndarray, mode: str = "none",
                     penalty: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
  """(rewards, row weights float32[N, G]) for completions cut by the length budget: "none" leaves
  them; "mask" keeps their rewards in the group statistics but gives their tokens no loss (DAPO's
  overlong filtering); "penalty" subtracts `penalty` from their reward."""
  if mode not in TRUNCATIONS:
    raise ValueError(f"truncation mode {mode!r} is not one of {TRUNCATIONS}")
  rewards_NxG = np.asarray(rewards_NxG, np.float32)
  truncated_NxG = np.asarray(truncated_NxG, bool)
  weights_NxG = np.ones_like(rewards_NxG)
  if mode == "mask":
    weights_NxG = (~truncated_NxG).astype(np.float32)
  elif mode == "penalty":
    rewards_NxG = rewards_NxG - penalty * truncated_NxG
  return rewards_NxG, weights_NxG


def kl_estimate(logp_BxT, ref_logp_BxT, estimator: str = "k3"):
  """Per-token estimate of KL(policy || reference) from the sampled tokens' log-probs."""
  if estimator == "k1":
    return logp_BxT - ref_logp_BxT
  if estimator == "k3":
    log_r_BxT = ref_logp_BxT - logp_BxT
    return jnp.exp(log_r_BxT) - log_r_BxT - 1.0
  raise ValueError(f"kl estimator {estimator!r} is not one of {KL_ESTIMATORS}")


def aggregate(x_BxT, mask_BxT, agg: str = "token", max_len: int = 1):
  """Reduce per-token values to a scalar loss as `agg` says (see the module docstring); rows whose mask
  is all zero do not count."""
  total = (x_BxT * mask_BxT).sum()
  tokens_B = mask_BxT.sum(axis=1)
  live = jnp.maximum((tokens_B > 0).sum(), 1)
  if agg == "token":
    return total / jnp.maximum(tokens_B.sum(), 1.0)
  if agg == "sequence":
    return ((x_BxT * mask_BxT).sum(axis=1) / jnp.maximum(tokens_B, 1.0)).sum() / live
  if agg == "constant":
    return total / (live * max_len)
  raise ValueError(f"loss aggregation {agg!r} is not one of {AGGREGATIONS}")


def masked_mean(x_BxT, mask_BxT):
  return (x_BxT * mask_BxT).sum() / jnp.maximum(mask_BxT.sum(), 1.0)


def policy_loss(logp_BxT, old_logp_BxT, adv_B, mask_BxT, *, eps_low: float = 0.2, eps_high: float = 0.2,
                agg: str = "token", max_len: int = 1, ref_logp_BxT=None, kl_coef: float = 0.0,
                kl_estimator: str = "k3"):
  """(loss, metrics): the negated clipped objective plus kl_coef * KL, aggregated by `agg`.
  metrics: rl/clip_frac (tokens where the clip is active), rl/ratio_mean, and rl/kl with a reference."""
  mask_BxT = mask_BxT.astype(jnp.float32)
  ratio_BxT = jnp.exp(logp_BxT - old_logp_BxT)
  adv_Bx1 = adv_B[:, None]
  unclipped_BxT = ratio_BxT * adv_Bx1
  clipped_BxT = jnp.clip(ratio_BxT, 1.0 - eps_low, 1.0 + eps_high) * adv_Bx1
  per_token_BxT = -jnp.minimum(unclipped_BxT, clipped_BxT)
  metrics = {"rl/clip_frac": masked_mean((clipped_BxT < unclipped_BxT).astype(jnp.float32), mask_BxT),
             "rl/ratio_mean": masked_mean(ratio_BxT, mask_BxT)}
  if ref_logp_BxT is not None:
    kl_BxT = kl_estimate(logp_BxT, ref_logp_BxT, kl_estimator)
    metrics["rl/kl"] = masked_mean(kl_BxT, mask_BxT)
    if kl_coef:
      per_token_BxT = per_token_BxT + kl_coef * kl_BxT
  return aggregate(per_token_BxT, mask_BxT, agg, max_len), metrics
