"""The jitted pieces of an RL step: per-token log-probs (and entropy) of rollouts, and the policy update.

A batch is a dict of [B, T] arrays: tokens, positions, targets (the next token at each position), mask
(float: 1 where the target is a completion token that carries loss), old_logp (the sampling policy's
log-prob of each target), optionally ref_logp (a frozen reference's), and adv (float32[B]).
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from llm_jax.posttrain import grpo


def token_logps(graphdef, params, batch: dict, temperature: float = 1.0):
  """(log-prob of each target, entropy of the next-token distribution), float32[B, T], with logits
  divided by `temperature` (then equal to what the sampler drew from, without top-k/top-p)."""
  model = nnx.merge(graphdef, params)
  logits_BxTxV, _ = model(batch["tokens"], batch["positions"])
  logits_BxTxV = logits_BxTxV.astype(jnp.float32) / temperature
  logz_BxT = jax.nn.logsumexp(logits_BxTxV, axis=-1)
  target_BxT = jnp.take_along_axis(logits_BxTxV, batch["targets"][..., None], axis=-1)[..., 0]
  probs_BxTxV = jnp.exp(logits_BxTxV - logz_BxT[..., None])
  entropy_BxT = logz_BxT - (probs_BxTxV * logits_BxTxV).sum(axis=-1)
  return target_BxT - logz_BxT, entropy_BxT


def make_logp_fn(graphdef, temperature: float = 1.0):
  """logp(params, batch) -> (logp float32[B, T], entropy float32[B, T]), for jax.jit."""
  return lambda params, batch: token_logps(graphdef, params, batch, temperature)


def make_update_step(graphdef, optimizer: optax.GradientTransformation, *, temperature: float = 1.0,
                     eps_low: float = 0.2, eps_high: float = 0.2, agg: str = "token", max_len: int = 1,
                     kl_coef: float = 0.0, kl_estimator: str = "k3"):
  """step(state, batch) -> (state, metrics): one optimizer step on grpo.policy_loss.

  `state` is the train state of train/state.py. A non-finite loss or gradient leaves params and
  optimizer state untouched and reports nonfinite=1 (as the SFT step does)."""
  if agg not in grpo.AGGREGATIONS:
    raise ValueError(f"rl.loss_agg={agg!r} is not one of {grpo.AGGREGATIONS}")
  if kl_estimator not in grpo.KL_ESTIMATORS:
    raise ValueError(f"rl.kl_estimator={kl_estimator!r} is not one of {grpo.KL_ESTIMATORS}")

  def loss_fn(params, batch):
    logp_BxT, _ = token_logps(graphdef, params, batch, temperature)
    return grpo.policy_loss(logp_BxT, batch["old_logp"], batch["adv"], batch["mask"], eps_low=eps_low,
                            eps_high=eps_high, agg=agg, max_len=max_len, ref_logp_BxT=batch.get("ref_logp"),
                            kl_coef=kl_coef, kl_estimator=kl_estimator)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def step(state, batch):
    params = state["params"]
    (loss, metrics), grads = grad_fn(params, batch)
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = optimizer.update(grads, state["opt_state"], params)
    new_params = optax.apply_updates(params, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    new_state = {"params": keep(new_params, params), "opt_state": keep(opt_state, state["opt_state"]),
                 "step": state["step"] + 1, "rng": state["rng"]}
    metrics = {**metrics, "rl/loss": loss, "train/grad_norm": grad_norm,
               "nonfinite": 1 - finite.astype(jnp.int32)}
    return new_state, metrics

  return step
