"""Benchmarks (commands, never timed tests). Each prints figures and, where a peer exists, runs the peer
on the same work in the same process and prints the ratio.

  python -m llm_jax.bench train --config=configs/gpt2.py:6x256 --config.train.batch_size=16 \\
      --config.train.seq_len=256 --against=hf
  python -m llm_jax.bench tokenizer --vocab_size=8192
  python -m llm_jax.bench data --max_docs=300
"""

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Model/train config for `train`.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps (after warm-up).")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps (compilation, caches).")
_AGAINST = flags.DEFINE_enum("against", None, ["hf"], "Peer to run on the same shapes: hf = transformers+PyTorch.")
_VOCAB = flags.DEFINE_integer("vocab_size", 8192, "`tokenizer`: vocabulary size for both trainers.")
_MAX_DOCS = flags.DEFINE_integer("max_docs", 300, "`data`/`tokenizer`: documents of the builtin corpus.")


def bench_ours(cfg) -> dict:
  """Tokens/s and MFU of our jitted train step (same optimizer as training) on random tokens."""
  import optax
  from flax import nnx
  from llm_jax.model import Transformer
  from llm_jax.train import flops, optim
  from llm_jax.train.step import make_train_step
  tc = cfg.train
  graphdef, params = nnx.split(Transformer(cfg.model, nnx.Rngs(0)))
  opt = optim.make_optimizer(tc, tc.steps)
  state = {"params": params, "opt_state": opt.init(params), "step": jnp.zeros((), jnp.int32),
           "rng": jnp.zeros((2,), jnp.uint32)}
  step = jax.jit(make_train_step(graphdef, opt, tc.z_loss), donate_argnums=(0,))
  rng = np.random.default_rng(0)
  B, T = tc.batch_size, tc.seq_len
  tokens = rng.integers(0, cfg.model.vocab_size, (tc.grad_accum, B // tc.grad_accum, T + 1)).astype(np.int32)
  batch = {"tokens": tokens[..., :-1], "targets": tokens[..., 1:],
           "positions": np.broadcast_to(np.arange(T), tokens[..., :-1].shape).astype(np.int32),
           "segment_ids": np.ones(tokens[..., :-1].shape, np.int32),
           "loss_mask": np.ones(tokens[..., :-1].shape, np.float32)}
  batch = jax.tree.map(jnp.asarray, batch)
  for _ in range(_WARMUP.value):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(_STEPS.value):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  seconds = (time.perf_counter() - start) / _STEPS.value
  tokens_per_s = B * T / seconds
  peak = flops.device_peak_flops() * jax.device_count()
  mfu = tokens_per_s * flops.flops_per_token(cfg.model, T) / peak
  del optax
  return {"tokens_per_s": tokens_per_s, "step_s": seconds, "mfu": mfu, "loss": float(metrics["train/loss"]),
          "params": flops.count_params(cfg.model)["total"], "device": jax.devices()[0].device_kind}


def bench_hf(cfg) -> dict:
  """The same GPT-2 shapes, batch and optimizer (AdamW + clipping) in transformers on PyTorch."""
  import torch
  import transformers
  m, tc = cfg.model, cfg.train
  if m.position != "learned" or m.mlp != "gelu":
    raise SystemExit("error: --against=hf compares GPT-2-style configs (learned positions, GELU)")
  torch.manual_seed(0)
  torch.set_num_threads(os.cpu_count())
  config = transformers.GPT2Config(vocab_size=m.vocab_size, n_positions=m.max_seq_len, n_embd=m.d_model,
                                   n_layer=m.num_layers, n_head=m.num_heads, n_inner=m.mlp_dim,
                                   activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                                   attn_pdrop=0.0, tie_word_embeddings=m.tie_embeddings)
  model = transformers.GPT2LMHeadModel(config).train()
  opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=(tc.b1, tc.b2), eps=tc.eps,
                          weight_decay=tc.weight_decay)
  B, T = tc.batch_size, tc.seq_len
  tokens = torch.randint(0, m.vocab_size, (B, T))

  def step():
    loss = model(input_ids=tokens, labels=tokens).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip or 1e9)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss

  for _ in range(_WARMUP.value):
    step()
  start = time.perf_counter()
  for _ in range(_STEPS.value):
    loss = step()
  seconds = (time.perf_counter() - start) / _STEPS.value
  return {"tokens_per_s": B * T / seconds, "step_s": seconds, "loss": float(loss),
          "torch": torch.__version__, "transformers": transformers.__version__}


def run_train() -> dict:
  cfg = _CONFIG.value
  if cfg is None:
    raise SystemExit("error: give --config=configs/<name>.py for `bench train`")
  if cfg.model.vocab_size == 0:
    cfg.model.vocab_size = 50304
  ours = bench_ours(cfg)
  print(f"llm_jax: {ours['tokens_per_s']:,.0f} tok/s  {ours['step_s'] * 1e3:.1f} ms/step  "
        f"MFU {ours['mfu']:.1%}  ({ours['params'] / 1e6:.1f}M params, {ours['device']})", flush=True)
  result = {"config": {"model": cfg.model.to_dict(), "batch_size": cfg.train.batch_size,
                       "seq_len": cfg.train.seq_len}, "ours": ours}
  if _AGAINST.value == "hf":
    peer = bench_hf(cfg)
    result["hf"] = peer
    result["ratio"] = ours["tokens_per_s"] / peer["tokens_per_s"]
    print(f"transformers+torch: {peer['tokens_per_s']:,.0f} tok/s  {peer['step_s'] * 1e3:.1f} ms/step", flush=True)
    print(f"ratio llm_jax / transformers: {result['ratio']:.2f}x", flush=True)
  return result


def run_tokenizer() -> dict:
  from llm_jax.data.sources import read_source
  from llm_jax.tokenizer.compare import compare_tokenizers
  texts = [d.text for d in read_source("builtin", max_docs=_MAX_DOCS.value)]
  heldout = texts[::10]
  train = [t for i, t in enumerate(texts) if i % 10]
  result = compare_tokenizers(train, heldout, _VOCAB.value)
  for name in ("ours", "hf"):
    r = result[name]
    print(f"{name:5s} bytes/token {r['bytes_per_token']:.3f}  train {r['train_mb_per_s']:.2f} MB/s  "
          f"encode {r['encode_mb_per_s']:.2f} MB/s  round-trip {r['round_trip_ok']}")
  print(f"ratio bytes/token ours / hf: {result['bytes_per_token_ratio']:.3f}")
  return result


def run_data() -> dict:
  from llm_jax.data.clean.bench import bench_cleaning
  result = bench_cleaning("builtin;clean=full", _MAX_DOCS.value)
  print(f"read {result['read_mb_per_s']:.2f} MB/s, clean {result['clean_mb_per_s']:.3f} MB/s "
        f"({result['mb_in']} MB in, {result['mb_kept']} MB kept, {result['workers']} workers)")
  for name, stage in result["stages"].items():
    print(f"  {name:18s} {stage}")
  return result


def main(argv):
  if len(argv) != 2 or argv[1] not in ("train", "tokenizer", "data"):
    raise SystemExit("usage: python -m llm_jax.bench {train,tokenizer,data} [flags]")
  result = {"train": run_train, "tokenizer": run_tokenizer, "data": run_data}[argv[1]]()
  print(json.dumps(result, default=str))


if __name__ == "__main__":
  app.run(main)
