"""Multi-head / grouped-query attention with an optional KV cache, and the attention kernels."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from llm_jax.model import layers
from llm_jax.model.rope import apply_rope, inverse_frequencies
from llm_jax.model.splash import splash_attention
from llm_jax.parallel import constrain

NEG_INF = -1e30
Q_NAMES = ("batch", "length", "heads", "head_dim")
KV_NAMES = ("batch", "length", "kv_heads", "head_dim")


def attend(q_BxTxHxD, k_BxSxKxD, v_BxSxKxD, mask_BxTxS, impl: str = "xla", is_causal: bool = False,
           segment_ids_BxT=None):
  """softmax(q k^T / sqrt(D) + mask) v with K <= H key/value heads. `mask` True = may attend.
  "splash" takes the causal, within-document mask from `segment_ids_BxT` instead of `mask`."""
  if impl == "splash":
    return splash_attention(q_BxTxHxD, k_BxSxKxD, v_BxSxKxD, segment_ids_BxT)
  if impl in ("jax", "cudnn"):
    return jax.nn.dot_product_attention(
        q_BxTxHxD, k_BxSxKxD, v_BxSxKxD, mask=None if is_causal else mask_BxTxS[:, None],
        is_causal=is_causal, implementation=None if impl == "jax" else "cudnn")
  B, T, H, D = q_BxTxHxD.shape
  K = k_BxSxKxD.shape[2]
  q_BxTxKxGxD = q_BxTxHxD.reshape(B, T, K, H // K, D)
  logits_BxKxGxTxS = jnp.einsum("btkgd,bskd->bkgts", q_BxTxKxGxD, k_BxSxKxD,
                                preferred_element_type=jnp.float32) / np.sqrt(D).astype(np.float32)
  logits_BxKxGxTxS = jnp.where(mask_BxTxS[:, None, None], logits_BxKxGxTxS, NEG_INF)
  probs_BxKxGxTxS = jax.nn.softmax(logits_BxKxGxTxS, axis=-1).astype(v_BxSxKxD.dtype)
  out_BxTxKxGxD = jnp.einsum("bkgts,bskd->btkgd", probs_BxKxGxTxS, v_BxSxKxD)
  return out_BxTxKxGxD.reshape(B, T, H, D)


def causal_mask(T: int, segment_ids_BxT=None):
  """bool[B or 1, T, T]: causal, and within one packed document when segment ids are given."""
  mask_1xTxT = jnp.tril(jnp.ones((T, T), bool))[None]
  if segment_ids_BxT is None:
    return mask_1xTxT
  same_BxTxT = segment_ids_BxT[:, :, None] == segment_ids_BxT[:, None, :]
  return mask_1xTxT & same_BxTxT


def init_cache(batch: int, length: int, num_kv_heads: int, head_dim: int, dtype) -> dict:
  """Empty key/value cache for one layer: static shapes, written at each row's positions."""
  shape = (batch, length, num_kv_heads, head_dim)
  return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}


def _write(cache_BxSxKxD, new_BxTxKxD, positions_BxT):
  """Write each row's new entries at that row's own positions (rows of a batch advance independently)."""
  return jax.vmap(lambda c, n, p: c.at[p].set(n.astype(c.dtype)))(cache_BxSxKxD, new_BxTxKxD, positions_BxT)


class Attention(nnx.Module):
  """Projections, optional QK-norm, RoPE, attention over the sequence or the cache, output projection."""

  def __init__(self, cfg, rngs: nnx.Rngs):
    D, H, K, E = cfg.head_dim or cfg.d_model // cfg.num_heads, cfg.num_heads, cfg.num_kv_heads, cfg.d_model
    init, out_init = layers.normal(cfg.init_std), layers.normal(cfg.init_std / np.sqrt(2 * cfg.num_layers))
    self.wq = layers.param(rngs, init, (E, H, D), ("embed", "heads", "head_dim"))
    self.wk = layers.param(rngs, init, (E, K, D), ("embed", "kv_heads", "head_dim"))
    self.wv = layers.param(rngs, init, (E, K, D), ("embed", "kv_heads", "head_dim"))
    self.wo = layers.param(rngs, out_init, (H, D, E), ("heads", "head_dim", "embed"))
    bias = cfg.use_bias
    self.bq = layers.param(rngs, layers.zeros, (H, D), ("heads", "head_dim")) if bias else None
    self.bk = layers.param(rngs, layers.zeros, (K, D), ("kv_heads", "head_dim")) if bias else None
    self.bv = layers.param(rngs, layers.zeros, (K, D), ("kv_heads", "head_dim")) if bias else None
    self.bo = layers.param(rngs, layers.zeros, (E,), ("embed",)) if bias else None
    self.qk_norm, self.impl = cfg.qk_norm, cfg.attention
    self.rope = cfg.position == "rope"
    if self.rope:  # a static tuple, not an array: it is no parameter and must not enter the state
      self.inv_freq = tuple(float(f) for f in inverse_frequencies(D, cfg.rope_theta, cfg.rope_scaling))

  def __call__(self, x_BxTxE, positions_BxT, segment_ids_BxT=None, cache=None):
    q = layers.dense(x_BxTxE, self.wq, self.bq, "bte,ehd->bthd")
    k = layers.dense(x_BxTxE, self.wk, self.bk, "bte,ekd->btkd")
    v = layers.dense(x_BxTxE, self.wv, self.bv, "bte,ekd->btkd")
    if self.qk_norm:
      q, k = layers.rms_norm(q), layers.rms_norm(k)
    if self.rope:
      inv_freq = np.asarray(self.inv_freq, np.float32)
      q, k = apply_rope(q, positions_BxT, inv_freq), apply_rope(k, positions_BxT, inv_freq)
    q, k, v = constrain(q, Q_NAMES), constrain(k, KV_NAMES), constrain(v, KV_NAMES)
    if cache is None:
      T = x_BxTxE.shape[1]
      mask = causal_mask(T, segment_ids_BxT)
      mask_BxTxT = jnp.broadcast_to(mask, (x_BxTxE.shape[0], T, T))
      out = attend(q, k, v, mask_BxTxT, self.impl, is_causal=segment_ids_BxT is None,
                   segment_ids_BxT=segment_ids_BxT)
    else:
      cache = {"k": _write(cache["k"], k, positions_BxT), "v": _write(cache["v"], v, positions_BxT)}
      S = cache["k"].shape[1]
      mask_BxTxS = jnp.arange(S)[None, None, :] <= positions_BxT[:, :, None]
      out = attend(q, cache["k"].astype(q.dtype), cache["v"].astype(q.dtype), mask_BxTxS,
                   "xla" if self.impl in ("cudnn", "splash") else self.impl)
    y = layers.dense(constrain(out, Q_NAMES), self.wo, self.bo, "bthd,hde->bte")
    return y, cache
