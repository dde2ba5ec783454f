"""One decoder-only transformer; config switches cover GPT-2, Llama 3 and modern variants."""

import jax
import jax.numpy as jnp
from flax import nnx

from llm_jax.model import layers
from llm_jax.model.attention import Attention, init_cache
from llm_jax.model.config import head_dim, validate
from llm_jax.model.mlp import MLP
from llm_jax.model.scan import scan_blocks, stacked_blocks
from llm_jax.parallel import constrain

RESIDUAL = ("batch", "length", "embed")

REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "save_dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class Block(nnx.Module):
  """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

  def __init__(self, cfg, rngs: nnx.Rngs):
    self.attn_norm = layers.Norm(cfg.d_model, cfg.norm, cfg.norm_eps, cfg.use_bias, rngs)
    self.attn = Attention(cfg, rngs)
    self.mlp_norm = layers.Norm(cfg.d_model, cfg.norm, cfg.norm_eps, cfg.use_bias, rngs)
    self.mlp = MLP(cfg, rngs)

  def __call__(self, x_BxTxE, positions_BxT, segment_ids_BxT=None, cache=None):
    h_BxTxE, cache = self.attn(self.attn_norm(x_BxTxE), positions_BxT, segment_ids_BxT, cache)
    x_BxTxE = x_BxTxE + h_BxTxE
    return constrain(x_BxTxE + self.mlp(self.mlp_norm(x_BxTxE)), RESIDUAL), cache


class Transformer(nnx.Module):
  """`model(tokens, positions, cache=None, segment_ids=None) -> (logits, cache)`.

  tokens, positions, segment_ids: int32[B, T]. Logits are float32[B, T, vocab]. With a cache (from
  `init_cache`), keys/values are written at each row's positions and queries attend to cache slots
  <= their position, so rows of different lengths decode together. With `scan_layers`, the blocks'
  parameters are stacked on a leading `layers` axis and the cache is {"k", "v"} of [layers, B, S, K, D].
  """

  def __init__(self, cfg, rngs: nnx.Rngs):
    validate(cfg)
    self.num_layers, self.num_kv_heads, self.head_dim = cfg.num_layers, cfg.num_kv_heads, head_dim(cfg)
    self.remat, self.logit_softcap = cfg.remat, cfg.logit_softcap
    self.scan_layers = bool(cfg.get("scan_layers", False))
    self.dtype = jnp.dtype(cfg.dtype)
    self.embed = layers.param(rngs, layers.normal(cfg.init_std), (cfg.vocab_size, cfg.d_model), ("vocab", "embed"))
    learned = cfg.position == "learned"
    self.pos_embed = layers.param(rngs, layers.normal(cfg.init_std / 2), (cfg.max_seq_len, cfg.d_model),
                                  ("length", "embed")) if learned else None
    if self.scan_layers:
      self.blocks = stacked_blocks(lambda r: Block(cfg, r), cfg.num_layers, rngs)
    else:
      self.blocks = nnx.List([Block(cfg, rngs) for _ in range(cfg.num_layers)])
    self.final_norm = layers.Norm(cfg.d_model, cfg.norm, cfg.norm_eps, cfg.use_bias, rngs)
    self.head = None if cfg.tie_embeddings else layers.param(
        rngs, layers.normal(cfg.init_std), (cfg.d_model, cfg.vocab_size), ("embed", "vocab"))

  def init_cache(self, batch: int, length: int) -> list[dict] | dict:
    one = lambda: init_cache(batch, length, self.num_kv_heads, self.head_dim, self.dtype)
    if self.scan_layers:
      return jax.tree.map(lambda x: jnp.zeros((self.num_layers, *x.shape), x.dtype), one())
    return [one() for _ in range(self.num_layers)]

  def __call__(self, tokens_BxT, positions_BxT, cache=None, segment_ids=None):
    table_VxE = constrain(self.embed[...], ("vocab", None))  # gathered over fsdp before the lookup
    x_BxTxE = jnp.take(table_VxE, tokens_BxT, axis=0)
    if self.pos_embed is not None:
      x_BxTxE = x_BxTxE + jnp.take(constrain(self.pos_embed[...], ("length", None)), positions_BxT, axis=0)
    x_BxTxE = constrain(x_BxTxE.astype(self.dtype), RESIDUAL)
    if self.scan_layers:
      policy = None if self.remat == "none" else REMAT_POLICIES[self.remat]
      x_BxTxE, new_cache = scan_blocks(self.blocks, x_BxTxE, positions_BxT, segment_ids, cache, policy)
    else:
      x_BxTxE, new_cache = self._loop_blocks(x_BxTxE, positions_BxT, segment_ids, cache)
    x_BxTxE = self.final_norm(x_BxTxE)
    if self.head is None:
      logits_BxTxV = jnp.einsum("bte,ve->btv", x_BxTxE, self.embed[...].astype(self.dtype),
                                preferred_element_type=jnp.float32)
    else:
      logits_BxTxV = jnp.einsum("bte,ev->btv", x_BxTxE, self.head[...].astype(self.dtype),
                                preferred_element_type=jnp.float32)
    logits_BxTxV = constrain(logits_BxTxV, ("batch", "length", "vocab"))
    if self.logit_softcap:
      cap = self.logit_softcap
      logits_BxTxV = cap * jnp.tanh(logits_BxTxV / cap)
    return logits_BxTxV, new_cache

  def _loop_blocks(self, x_BxTxE, positions_BxT, segment_ids, cache):
    new_cache = [] if cache is not None else None
    for i, block in enumerate(self.blocks):
      call = block
      if self.remat != "none":
        call = nnx.remat(lambda blk, *a: blk(*a), policy=REMAT_POLICIES[self.remat])
        call = lambda *a, _blk=block, _f=call: _f(_blk, *a)
      x_BxTxE, layer_cache = call(x_BxTxE, positions_BxT, segment_ids, None if cache is None else cache[i])
      if cache is not None:
        new_cache.append(layer_cache)
    return x_BxTxE, new_cache
