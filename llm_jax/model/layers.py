"""Small building blocks: parameters with logical axis names, norms, dense maps."""

import jax
import jax.numpy as jnp
from flax import nnx


def param(rngs: nnx.Rngs, init, shape: tuple[int, ...], names: tuple[str | None, ...]) -> nnx.Param:
  """A float32 parameter tagged with logical axis names (see DESIGN.md); the mesh rules shard it later."""
  assert len(shape) == len(names), (shape, names)
  return nnx.Param(init(rngs.params(), shape, jnp.float32), out_sharding=names, eager_sharding=False)


def normal(std: float):
  return jax.nn.initializers.normal(stddev=std)


zeros = jax.nn.initializers.zeros
ones = jax.nn.initializers.ones


class Norm(nnx.Module):
  """LayerNorm (optionally with bias) or RMSNorm over the last axis, computed in float32."""

  def __init__(self, dim: int, kind: str, eps: float, use_bias: bool, rngs: nnx.Rngs):
    self.kind, self.eps = kind, eps
    self.scale = param(rngs, ones, (dim,), ("embed",))
    self.bias = param(rngs, zeros, (dim,), ("embed",)) if kind == "layernorm" and use_bias else None

  def __call__(self, x: jax.Array) -> jax.Array:
    dtype = x.dtype
    x = x.astype(jnp.float32)
    if self.kind == "layernorm":
      x = x - x.mean(-1, keepdims=True)
    x = x * jax.lax.rsqrt((x * x).mean(-1, keepdims=True) + self.eps) * self.scale[...]
    if self.bias is not None:
      x = x + self.bias[...]
    return x.astype(dtype)


def rms_norm(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  """Parameter-free RMS normalisation (QK-norm)."""
  x32 = x.astype(jnp.float32)
  return (x32 * jax.lax.rsqrt((x32 * x32).mean(-1, keepdims=True) + eps)).astype(x.dtype)


def dense(x: jax.Array, w: nnx.Param, b: nnx.Param | None, spec: str) -> jax.Array:
  """einsum(spec) of x with w (cast to x's dtype), plus optional bias."""
  y = jnp.einsum(spec, x, w[...].astype(x.dtype))
  if b is not None:
    y = y + b[...].astype(x.dtype)
  return y
