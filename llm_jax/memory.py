"""Per-device memory estimate of a training run, checked against the device before anything compiles.

Parameters, optimizer state and gradients are counted exactly from their shardings; activations are an
estimate of what the backward pass keeps (per remat policy) for one micro-batch on one device.
XLA needs some working space on top, so a run near the limit may still not fit.
"""

import math

import jax
import numpy as np

from llm_jax import parallel
from llm_jax.model.config import head_dim

GiB = 1024**3


def tree_bytes_per_device(abstract, shardings) -> int:
  """Bytes one device holds of `abstract` (ShapeDtypeStruct-like leaves) placed on `shardings`."""
  total = 0
  for leaf, sharding in zip(jax.tree.leaves(abstract), jax.tree.leaves(shardings)):
    shape = sharding.shard_shape(leaf.shape) if leaf.shape else ()
    total += math.prod(shape) * np.dtype(leaf.dtype).itemsize
  return total


def _split(dim: int, shards: int) -> float:
  return dim / shards if shards > 1 and dim % shards == 0 else dim


def activation_bytes(model_cfg, rows: int, seq_len: int, tensor: int) -> int:
  """Bytes the backward pass keeps for `rows` sequences of `seq_len` on one device (tensor-parallel over
  `tensor`): saved tensors of every layer under the remat policy, one layer's working set, the logits."""
  c, tokens = model_cfg, rows * seq_len
  a = np.dtype(c.dtype).itemsize
  E, F, H, K, D, L = c.d_model, c.mlp_dim, c.num_heads, c.num_kv_heads, head_dim(c), c.num_layers
  heads, kv, mlp = _split(H, tensor) * D, _split(K, tensor) * D, _split(F, tensor)
  rope = 2 if c.position == "rope" else 1
  glu = 2 if c.mlp == "swiglu" else 1
  if c.attention == "xla":  # float32 logits/probabilities of every query against the sequence
    scores = _split(H, tensor) * seq_len * (4 + a)
  else:  # fused kernels keep only the output and a log-sum-exp per query
    scores = _split(H, tensor) * 4
  full_layer = (a * (4 * E + rope * (heads + 2 * kv) + heads + (glu + 1) * mlp) + scores + 2 * 4 * E)
  if c.remat == "full":
    per_layer, working = a * E, full_layer
  elif c.remat == "save_dots":
    per_layer, working = a * (3 * E + heads + 2 * kv + glu * mlp), full_layer
  else:
    per_layer, working = full_layer, 0
  logits = 2 * 4 * _split(c.vocab_size, tensor)  # float32 logits and their gradient
  return int(tokens * (L * per_layer + working + 2 * a * E + logits))


def estimate(cfg, abstract_state, shardings, mesh) -> dict:
  """Bytes per device: params, opt_state, grads, activations, total (and the inputs used)."""
  tc, rules = cfg.train, parallel.rules_dict(cfg.mesh)
  params = tree_bytes_per_device(abstract_state["params"], shardings["params"])
  opt = tree_bytes_per_device(abstract_state["opt_state"], shardings["opt_state"])
  grads = params * (2 if tc.grad_accum > 1 else 1)  # the accumulator and one micro-step's gradients
  rows = tc.batch_size // max(tc.grad_accum, 1) / parallel.batch_divisor(mesh, rules)
  acts = activation_bytes(cfg.model, math.ceil(rows), tc.seq_len, mesh.shape["tensor"])
  return {"params": params, "opt_state": opt, "grads": grads, "activations": acts,
          "total": params + opt + grads + acts, "rows_per_device": rows, "remat": cfg.model.remat,
          "mesh": dict(mesh.shape)}


def format_estimate(est: dict, limit: int | None) -> str:
  gb = lambda b: f"{b / GiB:.2f} GiB"
  mesh = "x".join(f"{k}={v}" for k, v in est["mesh"].items())
  parts = [f"params {gb(est['params'])}", f"optimizer {gb(est['opt_state'])}", f"grads {gb(est['grads'])}",
           f"activations {gb(est['activations'])} ({est['rows_per_device']:g} rows/device, remat={est['remat']})"]
  cap = f" of {gb(limit)}" if limit else ""
  return f"memory per device ({mesh}): " + ", ".join(parts) + f"; total ~{gb(est['total'])}{cap}"


def device_limit(train_cfg) -> int | None:
  """Bytes available per device: train.memory_limit_gb if set, else the accelerator's own (None on CPU)."""
  configured = train_cfg.get("memory_limit_gb", 0)
  if configured:
    return int(configured * GiB)
  device = jax.local_devices()[0]
  if device.platform == "cpu":
    return None
  stats = device.memory_stats() or {}
  return stats.get("bytes_limit")


def check_fits(est: dict, limit: int | None) -> None:
  """A one-line error naming the biggest part when the estimate exceeds `limit`."""
  if not limit or est["total"] <= limit:
    return
  parts = {k: est[k] for k in ("params", "opt_state", "grads", "activations")}
  biggest = max(parts, key=parts.get)
  hint = ("raise mesh.fsdp (shards params, grads, optimizer state)" if biggest != "activations" else
          "set model.remat=full or save_dots, lower train.batch_size or raise train.grad_accum")
  raise ValueError(f"estimated {est['total'] / GiB:.2f} GiB per device exceeds the {limit / GiB:.2f} GiB "
                   f"available (largest: {biggest} {parts[biggest] / GiB:.2f} GiB): {hint}")
