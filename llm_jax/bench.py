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


def ours_step(cfg):
  """A closure running one of our jitted train steps (same optimizer as training) on random tokens."""
  from flax import nnx
  from llm_jax.model import Transformer
  from llm_jax.train import optim
  from llm_jax.train.step import make_train_step
  tc = cfg.train
  graphdef, params = nnx.split(Transformer(cfg.model, nnx.Rngs(0)))
  opt = optim.make_optimizer(tc, tc.steps)
  box = {"state": {"params": params, "opt_state": opt.init(params), "step": jnp.zeros((), jnp.int32),
                   "rng": jnp.zeros((2,), jnp.uint32)}}
  step = jax.jit(make_train_step(graphdef, opt, tc.z_loss), donate_argnums=(0,))
  B, T = tc.batch_size, tc.seq_len
  tokens = np.random.default_rng(0).integers(0, cfg.model.vocab_size, (tc.grad_accum, B // tc.grad_accum, T + 1))
  inputs = tokens[..., :-1].astype(np.int32)
  batch = jax.tree.map(jnp.asarray, {
      "tokens": inputs, "targets": tokens[..., 1:].astype(np.int32),
      "positions": np.broadcast_to(np.arange(T), inputs.shape).astype(np.int32),
      "segment_ids": np.ones(inputs.shape, np.int32), "loss_mask": np.ones(inputs.shape, np.float32)})

  def run():
    box["state"], metrics = step(box["state"], batch)
    return float(jax.block_until_ready(metrics["train/loss"]))
  return run


def hf_step(cfg):
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
  tokens = torch.randint(0, m.vocab_size, (tc.batch_size, tc.seq_len))

  def run():
    loss = model(input_ids=tokens, labels=tokens).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip or 1e9)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())
  return run, {"torch": torch.__version__, "transformers": transformers.__version__}


def timed(run) -> float:
  start = time.perf_counter()
  run()
  return time.perf_counter() - start


def run_train() -> dict:
  """Our step and the peer's, interleaved round by round so both see the same machine load; medians."""
  from llm_jax.train import flops
  cfg = _CONFIG.value
  if cfg is None:
    raise SystemExit("error: give --config=configs/<name>.py for `bench train`")
  if cfg.model.vocab_size == 0:
    cfg.model.vocab_size = 50304
  runners = {"ours": ours_step(cfg)}
  info = {}
  if _AGAINST.value == "hf":
    runners["hf"], info = hf_step(cfg)
  for run in runners.values():
    for _ in range(_WARMUP.value):
      run()
  times = {name: [] for name in runners}
  for _ in range(_STEPS.value):
    for name, run in runners.items():
      times[name].append(timed(run))
  tokens = cfg.train.batch_size * cfg.train.seq_len
  result = {"config": {"model": cfg.model.to_dict(), "batch_size": cfg.train.batch_size,
                       "seq_len": cfg.train.seq_len}, "device": jax.devices()[0].device_kind, **info}
  for name, ts in times.items():
    step_s = float(np.median(ts))
    result[name] = {"tokens_per_s": tokens / step_s, "step_s": step_s, "steps": len(ts)}
  ours = result["ours"]
  ours["mfu"] = ours["tokens_per_s"] * flops.flops_per_token(cfg.model, cfg.train.seq_len) / (
      flops.device_peak_flops())  # the unsharded step runs on one device: that device's peak
  ours["params"] = flops.count_params(cfg.model)["total"]
  print(f"llm_jax: {ours['tokens_per_s']:,.0f} tok/s  {ours['step_s'] * 1e3:.1f} ms/step  MFU {ours['mfu']:.1%}  "
        f"({ours['params'] / 1e6:.1f}M params, {result['device']})", flush=True)
  if "hf" in result:
    peer = result["hf"]
    result["ratio"] = ours["tokens_per_s"] / peer["tokens_per_s"]
    print(f"transformers+torch: {peer['tokens_per_s']:,.0f} tok/s  {peer['step_s'] * 1e3:.1f} ms/step", flush=True)
    print(f"ratio llm_jax / transformers (median of {_STEPS.value} interleaved steps): {result['ratio']:.2f}x",
          flush=True)
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
