"""Choosing the next token from logits: greedy, temperature, top-k, top-p (all traced, no recompiles)."""

import jax
import jax.numpy as jnp


def filter_logits(logits_BxV, top_k_B, top_p_B):
  """Mask logits outside each row's top-k (k=0: off) and top-p nucleus (p>=1: off) to -inf."""
  V = logits_BxV.shape[-1]
  sorted_BxV = jnp.sort(logits_BxV, axis=-1)[:, ::-1]
  k_B = jnp.where(top_k_B > 0, jnp.minimum(top_k_B, V), V)
  kth_B = jnp.take_along_axis(sorted_BxV, (k_B - 1)[:, None], axis=-1)[:, 0]
  probs_BxV = jax.nn.softmax(sorted_BxV, axis=-1)
  before_BxV = jnp.cumsum(probs_BxV, axis=-1) - probs_BxV  # mass strictly above each sorted token
  keep_BxV = before_BxV < top_p_B[:, None]
  # the smallest logit still inside the nucleus (the top token is always kept)
  nucleus_min_B = jnp.min(jnp.where(keep_BxV, sorted_BxV, jnp.inf), axis=-1)
  threshold_B = jnp.maximum(kth_B, jnp.where(top_p_B < 1.0, nucleus_min_B, -jnp.inf))
  return jnp.where(logits_BxV >= threshold_B[:, None], logits_BxV, -jnp.inf)


def sample(rng, logits_BxV, temperature_B, top_k_B, top_p_B):
  """int32[B]: argmax where temperature == 0, else a draw from the filtered, tempered distribution."""
  logits_BxV = logits_BxV.astype(jnp.float32)
  greedy_B = jnp.argmax(logits_BxV, axis=-1)
  scaled_BxV = logits_BxV / jnp.maximum(temperature_B, 1e-6)[:, None]
  # the filter sorts the vocabulary (most of a small model's decode step on CPU): only when some row asks
  filtering = jnp.any(top_k_B > 0) | jnp.any(top_p_B < 1.0)
  scaled_BxV = jax.lax.cond(filtering, lambda x: filter_logits(x, top_k_B, top_p_B), lambda x: x, scaled_BxV)
  drawn_B = jax.lax.cond(jnp.any(temperature_B > 0), lambda x: jax.random.categorical(rng, x, axis=-1).astype(
      jnp.int32), lambda x: jnp.zeros(x.shape[:1], jnp.int32), scaled_BxV)
  return jnp.where(temperature_B > 0, drawn_B, greedy_B).astype(jnp.int32)
