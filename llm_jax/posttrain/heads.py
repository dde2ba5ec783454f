"""Scalar heads on the transformer's final hidden state (reward model, PPO value function).

`final_hidden` runs the Transformer's own embedding, blocks and final norm (the first half of its
`__call__`) and `logits_from_hidden` the output projection (the second half), so a head and the LM
logits share one forward pass without changing the model; tests/test_reward_model.py checks that the
two halves still compose to `model(...)`.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from llm_jax.model import layers
from llm_jax.model.scan import scan_blocks
from llm_jax.model.transformer import REMAT_POLICIES, RESIDUAL, Transformer
from llm_jax.parallel import constrain


def final_hidden(model: Transformer, tokens_BxT, positions_BxT, segment_ids_BxT=None):
  """float[B, T, E]: the residual stream after the final norm (what the LM head reads)."""
  table_VxE = constrain(model.embed[...], ("vocab", None))
  x_BxTxE = jnp.take(table_VxE, tokens_BxT, axis=0)
  if model.pos_embed is not None:
    x_BxTxE = x_BxTxE + jnp.take(constrain(model.pos_embed[...], ("length", None)), positions_BxT, axis=0)
  x_BxTxE = constrain(x_BxTxE.astype(model.dtype), RESIDUAL)
  if model.scan_layers:
    policy = None if model.remat == "none" else REMAT_POLICIES[model.remat]
    x_BxTxE, _ = scan_blocks(model.blocks, x_BxTxE, positions_BxT, segment_ids_BxT, None, policy)
  else:
    x_BxTxE, _ = model._loop_blocks(x_BxTxE, positions_BxT, segment_ids_BxT, None)  # pylint: disable=protected-access
  return model.final_norm(x_BxTxE)


def logits_from_hidden(model: Transformer, x_BxTxE):
  """float32[B, T, V]: the model's output projection (tied or separate head, soft cap) of `final_hidden`."""
  if model.head is None:
    logits_BxTxV = jnp.einsum("bte,ve->btv", x_BxTxE, model.embed[...].astype(model.dtype),
                              preferred_element_type=jnp.float32)
  else:
    logits_BxTxV = jnp.einsum("bte,ev->btv", x_BxTxE, model.head[...].astype(model.dtype),
                              preferred_element_type=jnp.float32)
  logits_BxTxV = constrain(logits_BxTxV, ("batch", "length", "vocab"))
  if model.logit_softcap:
    logits_BxTxV = model.logit_softcap * jnp.tanh(logits_BxTxV / model.logit_softcap)
  return logits_BxTxV


class ScalarHead(nnx.Module):
  """x[..., E] -> float32[...]: a linear map to one number (named kernel/bias, so the optimizer treats it
  like a norm: AdamW, no weight decay, never Muon)."""

  def __init__(self, dim: int, rngs: nnx.Rngs, init_std: float = 0.0):
    self.kernel = layers.param(rngs, layers.normal(init_std) if init_std else layers.zeros, (dim,), ("embed",))
    self.bias = layers.param(rngs, layers.zeros, (), ())

  def __call__(self, x_xE):
    return jnp.einsum("...e,e->...", x_xE.astype(jnp.float32), self.kernel[...]) + self.bias[...]


def token_logprobs(logits_BxTxV, targets_BxT):
  """float32[B, T]: log p(target) under the logits."""
  logits_BxTxV = logits_BxTxV.astype(jnp.float32)
  target_BxT = jnp.take_along_axis(logits_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]
  return target_BxT - jax.nn.logsumexp(logits_BxTxV, axis=-1)
