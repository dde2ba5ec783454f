"""Hugging Face models in and out: `load_hf` (GPT-2, Llama 2/3/3.1/3.2 folders or hub names) and `save_hf`.

  graphdef, params, model_cfg, tokenizer = load_hf("/models/Llama-3.2-1B")  # or "meta-llama/Llama-3.2-1B"
  save_hf(graphdef, params, model_cfg, "runs/nano/tokenizer", "/tmp/nano_hf")

Weights are read tensor by tensor from safetensors and placed straight into their shards on the mesh.
"""

import json
import os

import jax
import ml_collections
import numpy as np

from llm_jax import parallel
from llm_jax.hf import gpt2, io, llama
from llm_jax.hf import params as params_lib
from llm_jax.hf import tokenizer as tokenizer_lib
from llm_jax.hf.io import resolve
from llm_jax.hf.tokenizer import prompt_conventions
from llm_jax.model import config as model_config_lib
from llm_jax.model import scan as model_scan
from llm_jax.train import state as state_lib

FAMILIES = {gpt2.ARCHITECTURE: gpt2, llama.ARCHITECTURE: llama}
_MODEL_TYPES = {"gpt2": gpt2, "llama": llama}

__all__ = ["FAMILIES", "family_of", "load_hf", "model_config", "prompt_conventions", "resolve", "save_hf"]


def family_of(hf_config: dict):
  """The mapping module (gpt2 or llama) for an HF config.json dict."""
  archs = hf_config.get("architectures") or []
  for arch in archs:
    if arch in FAMILIES:
      return FAMILIES[arch]
  if not archs and hf_config.get("model_type") in _MODEL_TYPES:
    return _MODEL_TYPES[hf_config["model_type"]]
  named = ", ".join(archs) or f"model_type {hf_config.get('model_type')!r}"
  raise ValueError(f"architecture {named} is not supported; supported: {', '.join(FAMILIES)}")


def model_config(hf_config: dict):
  """Our model config for an HF config.json dict (fails naming any option we cannot express)."""
  return family_of(hf_config).model_config(hf_config)


def load_hf(path_or_name: str, mesh=None, rules: dict | None = None, dtype: str = "float32",
            overrides: dict | None = None):
  """(graphdef, params, model_cfg, tokenizer) of a Hugging Face model folder or hub name.

  Parameters are float32 (like our master weights); `dtype` is the compute dtype. `overrides` sets
  other model fields that leave shapes alone (attention, remat, scan_layers, max_seq_len of a RoPE model). `mesh`
  and `rules` (logical axis -> mesh axes) choose the shardings: default, all devices on `data`,
  replicated. `tokenizer` is None when the folder has none.
  """
  directory = resolve(path_or_name)
  hf_config = io.read_config(directory)
  family = family_of(hf_config)
  cfg = family.model_config(hf_config)
  shapes = model_config_lib.shape_keys(cfg)
  cfg.update(dict(overrides or {}, dtype=dtype))
  changed = [k for k, v in model_config_lib.shape_keys(cfg).items() if k != "scan_layers" and shapes[k] != v]
  if changed:
    raise ValueError(f"model.{changed[0]} of an imported model is fixed by its weights ({shapes[changed[0]]}); "
                     "leave it out of the overrides")
  per_layer = ml_collections.ConfigDict(cfg.to_dict())  # the weights are read layer by layer
  per_layer.scan_layers = False
  graphdef, abstract = state_lib.model_graphdef_and_shapes(per_layer)
  mesh = mesh or parallel.make_mesh(shape=(jax.device_count(), 1, 1))
  rules = rules or parallel.rules_dict(parallel.default_config())
  shardings = parallel.tree_shardings(abstract, mesh, rules)
  with io.SafetensorsReader(directory) as reader:
    entries = params_lib.match_prefix(family.entries(cfg), reader.names(), family.PREFIX)
    params = params_lib.load_params(entries, reader, abstract, shardings, family.ignore)
  if cfg.get("scan_layers"):  # stack the layers on a leading axis, placed on the scan model's shardings
    graphdef, stacked = state_lib.model_graphdef_and_shapes(cfg)
    params = model_scan.stack_params(params, stacked, parallel.tree_shardings(stacked, mesh, rules))
  return graphdef, params, cfg, tokenizer_lib.load(directory)


def export_family(model_cfg):
  """gpt2 or llama, whichever expresses `model_cfg`; a one-line error otherwise."""
  for family in FAMILIES.values():
    if family.matches(model_cfg):
      return family
  c = model_cfg
  raise ValueError(
      f"no Hugging Face architecture for norm={c.norm}, position={c.position}, mlp={c.mlp}, use_bias={c.use_bias}, "
      f"qk_norm={c.qk_norm}, logit_softcap={c.logit_softcap}, kv_heads={c.num_kv_heads}/{c.num_heads}: export "
      "supports rmsnorm+rope+swiglu without biases (LlamaForCausalLM) and layernorm+learned+gelu with biases "
      "and full heads (GPT2LMHeadModel)")


def save_hf(graphdef, params, model_cfg, tokenizer_dir: str | None, out_dir: str, dtype: str = "float32",
            max_shard_bytes: int = 5 << 30) -> str:
  """Write `out_dir` for transformers: config.json, model.safetensors (or shards), tokenizer files.

  `dtype` ("float32" | "bfloat16") is the stored weight type. Every process must call this (sharded
  params are gathered tensor by tensor); process 0 writes. Returns `out_dir`.
  """
  del graphdef  # the config says everything the mapping needs
  if dtype not in ("float32", "bfloat16"):
    raise ValueError(f"dtype={dtype!r}: choose float32 or bfloat16")
  family = export_family(model_cfg)
  writer = jax.process_index() == 0
  if writer:
    os.makedirs(out_dir, exist_ok=True)
  tokenizer = None
  if tokenizer_dir and writer:
    tokenizer = tokenizer_lib.export(tokenizer_dir, out_dir)
  bos, eos = None, None
  if tokenizer is not None:
    try:
      bos = tokenizer.bos_id
    except KeyError:
      pass
    eos = tokenizer.eos_id if tokenizer.eos_id is not None else bos
  np_dtype = {"float32": np.float32, "bfloat16": jax.numpy.bfloat16}[dtype]
  if model_cfg.get("scan_layers"):  # stacked layers: export them one by one like a per-layer model
    params = model_scan.unstack_params(params)
  tensors = params_lib.export_tensors(family.entries(model_cfg), params, np_dtype)
  if not writer:
    for _ in tensors:  # take part in the gathers
      pass
    return out_dir
  io.write_safetensors(out_dir, tensors, max_shard_bytes)
  config = family.hf_config(model_cfg, bos, eos)
  config["dtype"] = config["torch_dtype"] = dtype
  with open(os.path.join(out_dir, "config.json"), "w") as f:
    json.dump(config, f, indent=1)
  return out_dir
