"""Rotary position embeddings, with Llama-3.1 frequency scaling."""

import math

import jax
import jax.numpy as jnp
import numpy as np


def inverse_frequencies(head_dim: int, theta: float, scaling=None) -> np.ndarray:
  """float32[head_dim // 2]; `scaling` is the model config's rope_scaling (factor 0 = none)."""
  inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
  if scaling is None or not scaling.factor:
    return inv_freq.astype(np.float32)
  # Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
  low_wavelen = scaling.original_max_position / scaling.low_freq_factor
  high_wavelen = scaling.original_max_position / scaling.high_freq_factor
  wavelen = 2 * math.pi / inv_freq
  smooth = (scaling.original_max_position / wavelen - scaling.low_freq_factor) / (
      scaling.high_freq_factor - scaling.low_freq_factor)
  scaled = np.where(wavelen > low_wavelen, inv_freq / scaling.factor, inv_freq)
  mid = (wavelen <= low_wavelen) & (wavelen >= high_wavelen)
  scaled = np.where(mid, (1 - smooth) * inv_freq / scaling.factor + smooth * inv_freq, scaled)
  return scaled.astype(np.float32)


def apply_rope(x_BxTxHxD: jax.Array, positions_BxT: jax.Array, inv_freq: np.ndarray) -> jax.Array:
  """Rotate halves (HF/Llama "rotate_half" layout) by angle position * frequency."""
  angles_BxTxK = positions_BxT[..., None].astype(jnp.float32) * jnp.asarray(inv_freq)
  cos = jnp.cos(angles_BxTxK)[:, :, None, :]
  sin = jnp.sin(angles_BxTxK)[:, :, None, :]
  x = x_BxTxHxD.astype(jnp.float32)
  x1, x2 = jnp.split(x, 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxTxHxD.dtype)
