"""Causal attention by the Pallas TPU splash-attention kernel (`model.attention="splash"`).

Runs on TPU only (a one-line error elsewhere). Under an active mesh (`parallel.activation_sharding`) the
kernel runs per shard with `jax.shard_map`: batch over the batch mesh axes, heads over the heads axes.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from llm_jax import parallel


def _kernel(num_heads: int, seq_len: int, interpret: bool):
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as mask_lib
  mask = mask_lib.MultiHeadMask([mask_lib.CausalMask((seq_len, seq_len)) for _ in range(num_heads)])
  block = min(512, seq_len)
  sizes = splash.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block, block_q_dkv=block,
                            block_kv_dkv=block, block_kv_dkv_compute=block, block_q_dq=block, block_kv_dq=block)
  return splash.make_splash_mha(mask, block_sizes=sizes, head_shards=1, q_seq_shards=1, interpret=interpret), splash


def _local(q_BxHxTxD, k_BxKxTxD, v_BxKxTxD, seg_BxT, interpret: bool):
  kernel, splash = _kernel(q_BxHxTxD.shape[1], q_BxHxTxD.shape[2], interpret)
  segments = splash.SegmentIds(q=seg_BxT, kv=seg_BxT)
  return jax.vmap(lambda q, k, v, s: kernel(q, k, v, segment_ids=s))(q_BxHxTxD, k_BxKxTxD, v_BxKxTxD, segments)


def splash_attention(q_BxTxHxD, k_BxTxKxD, v_BxTxKxD, segment_ids_BxT=None, interpret: bool = False):
  """Causal softmax(q k^T / sqrt(D)) v within documents (segment ids), K <= H key/value heads."""
  if not interpret and jax.default_backend() != "tpu":
    raise ValueError(f"model.attention='splash' is a Pallas TPU kernel and this backend is "
                     f"{jax.default_backend()}; use 'xla' or 'jax' (or 'cudnn' on GPU)")
  B, T, H, D = q_BxTxHxD.shape
  K = k_BxTxKxD.shape[2]
  q_BxHxTxD = (q_BxTxHxD * np.float32(1 / np.sqrt(D)).astype(q_BxTxHxD.dtype)).transpose(0, 2, 1, 3)
  k_BxKxTxD, v_BxKxTxD = k_BxTxKxD.transpose(0, 2, 1, 3), v_BxTxKxD.transpose(0, 2, 1, 3)
  seg_BxT = jnp.ones((B, T), jnp.int32) if segment_ids_BxT is None else segment_ids_BxT.astype(jnp.int32)
  active = parallel.active_mesh()
  if active is None:
    out_BxHxTxD = _local(q_BxHxTxD, k_BxKxTxD, v_BxKxTxD, seg_BxT, interpret)
  else:
    mesh, rules = active
    q_spec = parallel.activation_spec(("batch", "heads", "length", "head_dim"), q_BxHxTxD.shape, mesh, rules)
    kv_spec = P(q_spec[0], q_spec[1], None, None)
    if q_spec[1] is not None and K % _size(mesh, q_spec[1]):  # kv heads do not split like q heads: repeat
      k_BxKxTxD, v_BxKxTxD = jnp.repeat(k_BxKxTxD, H // K, 1), jnp.repeat(v_BxKxTxD, H // K, 1)
    fn = jax.shard_map(lambda q, k, v, s: _local(q, k, v, s, interpret), mesh=mesh,
                       in_specs=(q_spec, kv_spec, kv_spec, P(q_spec[0], None)), out_specs=q_spec, check_vma=False)
    out_BxHxTxD = fn(q_BxHxTxD, k_BxKxTxD, v_BxKxTxD, seg_BxT)
  return out_BxHxTxD.transpose(0, 2, 1, 3)


def _size(mesh, axes) -> int:
  names = (axes,) if isinstance(axes, str) else tuple(axes)
  return int(np.prod([mesh.shape[a] for a in names]))
