"""Hugging Face folders that must be refused with a clear message, and config parsing (no torch needed)."""

import json

import numpy as np
import pytest

from llm_jax import hf
from llm_jax.hf import gpt2, io, llama

LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 16,
         "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
         "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "tie_word_embeddings": True}


def write_folder(directory, config: dict, change=None, drop=None, extra=None) -> None:
  """config.json plus zero tensors of the shapes the mapping expects (one changed / dropped / added)."""
  (directory / "config.json").write_text(json.dumps(config))
  tensors = {e.hf: np.zeros(e.hf_shape, np.float32) for e in llama.entries(hf.model_config(config))}
  if change:
    tensors[change] = np.zeros((3, 3), np.float32)
  tensors.pop(drop, None)
  tensors.update(extra or {})
  io.write_safetensors(str(directory), iter(tensors.items()))


def test_loads_zero_model_on_the_mesh(tmp_path):
  write_folder(tmp_path, LLAMA, extra={"model.layers.0.self_attn.rotary_emb.inv_freq": np.zeros(4, np.float32)})
  _, params, cfg, tokenizer = hf.load_hf(str(tmp_path), dtype="bfloat16", overrides=dict(remat="full"))
  assert cfg.num_kv_heads == 1 and cfg.tie_embeddings and tokenizer is None
  assert cfg.dtype == "bfloat16" and cfg.remat == "full"
  with pytest.raises(ValueError, match="model.num_layers of an imported model is fixed by its weights"):
    hf.load_hf(str(tmp_path), overrides=dict(num_layers=3))
  wq = params["blocks"][0]["attn"]["wq"].get_value()
  assert wq.shape == (16, 2, 8) and wq.sharding.mesh.axis_names == ("data", "fsdp", "tensor")


def test_pickle_only_folder_is_refused(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(LLAMA))
  (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
  with pytest.raises(ValueError, match="pickle weights .*pytorch_model.bin.*safetensors"):
    hf.load_hf(str(tmp_path))


def test_unsupported_architecture(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps(dict(LLAMA, architectures=["MistralForCausalLM"])))
  with pytest.raises(ValueError, match="MistralForCausalLM is not supported; supported: GPT2LMHeadModel, Llama"):
    hf.load_hf(str(tmp_path))


def test_wrong_shape_names_tensor_and_shapes(tmp_path):
  write_folder(tmp_path, LLAMA, change="model.layers.0.mlp.up_proj.weight")
  with pytest.raises(ValueError, match=r"'model.layers.0.mlp.up_proj.weight': expected shape \(32, 16\), "
                                       r"found \(3, 3\)"):
    hf.load_hf(str(tmp_path))


def test_missing_and_unexpected_tensors(tmp_path):
  (tmp_path / "a").mkdir()
  write_folder(tmp_path / "a", LLAMA, drop="model.norm.weight")
  with pytest.raises(ValueError, match=r"'model.norm.weight' missing .*expected shape \(16,\)"):
    hf.load_hf(str(tmp_path / "a"))
  (tmp_path / "b").mkdir()
  write_folder(tmp_path / "b", LLAMA, extra={"model.layers.0.self_attn.q_proj.bias": np.zeros(16, np.float32)})
  with pytest.raises(ValueError, match="1 tensors .* have no place in the model.*q_proj.bias"):
    hf.load_hf(str(tmp_path / "b"))


def test_config_parsing():
  legacy = dict(LLAMA, rope_theta=500000.0, rope_scaling={
      "type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192})
  cfg = hf.model_config(legacy)
  assert cfg.rope_theta == 500000.0 and cfg.rope_scaling.factor == 32.0
  assert cfg.rope_scaling.original_max_position == 8192 and cfg.head_dim == 8
  new = dict(LLAMA, rope_parameters={"rope_type": "default", "rope_theta": 1234.0})
  assert hf.model_config(new).rope_theta == 1234.0 and not hf.model_config(new).rope_scaling.factor
  with pytest.raises(ValueError, match="rope type='linear' is not supported"):
    hf.model_config(dict(LLAMA, rope_scaling={"rope_type": "linear", "factor": 2.0}))
  with pytest.raises(ValueError, match="attention_bias=True"):
    hf.model_config(dict(LLAMA, attention_bias=True))
  gpt = {"architectures": ["GPT2LMHeadModel"], "vocab_size": 64, "n_embd": 16, "n_layer": 1, "n_head": 2,
         "n_positions": 32}
  cfg = hf.model_config(gpt)
  assert cfg.mlp_dim == 64 and cfg.tie_embeddings and cfg.norm == "layernorm" and gpt2.matches(cfg)
  with pytest.raises(ValueError, match="activation_function='gelu' is not supported"):
    hf.model_config(dict(gpt, activation_function="gelu"))


def test_hub_name_offline(monkeypatch):
  import huggingface_hub
  seen = {}

  def offline(repo_id, **kwargs):
    seen.update(kwargs)
    raise OSError("We couldn't connect to 'https://huggingface.co'\nsecond line")
  monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
  with pytest.raises(RuntimeError, match=r"could not fetch 'org/model' .*couldn't connect.*\); check the network"):
    hf.load_hf("org/model")
  assert "*.safetensors" in seen["allow_patterns"] and not any("bin" in p for p in seen["allow_patterns"])
  with pytest.raises(FileNotFoundError, match="no model folder at '/no/such/folder'"):
    hf.resolve("/no/such/folder")


def test_sharded_write_and_read(tmp_path):
  import ml_dtypes  # pylint: disable=g-import-not-at-top
  tensors = {f"t{i}": np.full((4, 8), i, ml_dtypes.bfloat16) for i in range(5)}
  files = io.write_safetensors(str(tmp_path), iter(tensors.items()), max_shard_bytes=130)
  assert files == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
  with io.SafetensorsReader(str(tmp_path)) as reader:
    assert reader.names() == set(tensors) and reader.shape("t3") == (4, 8)
    assert reader.read("t3").dtype == ml_dtypes.bfloat16 and float(reader.read("t3")[0, 0]) == 3.0
