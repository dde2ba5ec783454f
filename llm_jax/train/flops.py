"""Model FLOPs per token (attention included) and the device's peak, for MFU."""

import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

# Dense bf16 peak FLOP/s per chip (no sparsity).
PEAK_FLOPS = {
    "H100": 989e12, "H100 PCIe": 756e12, "H100 NVL": 835e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A10G": 125e12, "L4": 121e12,
    "B200": 2250e12, "TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v5p": 459e12,
    "TPU v5": 459e12, "TPU v6 lite": 918e12, "TPU v6e": 918e12,
}


def count_params(cfg) -> dict:
  """Parameter counts from the model config: total, embeddings, and matmul (non-embedding) weights."""
  D = cfg.head_dim or cfg.d_model // cfg.num_heads
  E, H, K, F = cfg.d_model, cfg.num_heads, cfg.num_kv_heads, cfg.mlp_dim
  attn = E * H * D * 2 + E * K * D * 2
  mlp = E * F * (3 if cfg.mlp == "swiglu" else 2)
  matmul = cfg.num_layers * (attn + mlp)
  embed = cfg.vocab_size * E + (cfg.max_seq_len * E if cfg.position == "learned" else 0)
  head = 0 if cfg.tie_embeddings else E * cfg.vocab_size
  small = cfg.num_layers * 4 * E + 2 * E  # norms and biases, roughly
  return {"total": matmul + embed + head + small, "matmul": matmul, "embedding": embed, "head": head}


def flops_per_token(cfg, seq_len: int) -> float:
  """Training FLOPs per token: 6 x (matmul weights + output head) + causal-agnostic attention
  12 x layers x heads x head_dim x seq_len (PaLM appendix B convention)."""
  D = cfg.head_dim or cfg.d_model // cfg.num_heads
  head_matmul = cfg.d_model * cfg.vocab_size
  n = count_params(cfg)["matmul"] + head_matmul
  return 6 * n + 12 * cfg.num_layers * cfg.num_heads * D * seq_len


def _cache_path() -> str:
  return os.path.join(os.path.expanduser("~"), ".cache", "llm_jax", "cpu_peak_flops.json")


@functools.lru_cache(maxsize=None)
def measured_cpu_peak() -> float:
  """float32 matmul FLOP/s of this CPU, measured once and cached on disk."""
  path = _cache_path()
  key = f"{os.cpu_count()}-{jax.__version__}"
  try:
    with open(path) as f:
      cached = json.load(f)
    if key in cached:
      return cached[key]
  except (OSError, ValueError):
    cached = {}
  n = 1024
  a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n), np.float32))
  matmul = jax.jit(lambda x: x @ x)
  matmul(a).block_until_ready()
  best = float("inf")
  for _ in range(5):
    t = time.perf_counter()
    matmul(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  peak = 2 * n**3 / best
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cached[key] = peak
    with open(path, "w") as f:
      json.dump(cached, f)
  except OSError:
    pass
  return peak


def device_peak_flops(device=None) -> float:
  """Peak FLOP/s of one device: a table for accelerators, a measured matmul rate on CPU."""
  device = device or jax.devices()[0]
  if device.platform == "cpu":
    return measured_cpu_peak()
  kind = device.device_kind
  for name in sorted(PEAK_FLOPS, key=len, reverse=True):
    if name.lower() in kind.lower():
      return PEAK_FLOPS[name]
  return float("nan")
