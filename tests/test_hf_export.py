"""Exporting our models to Hugging Face folders that transformers loads with matching logits."""

import json
import os

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

import torch  # noqa: E402  (test extra)
import transformers  # noqa: E402  (test extra)

from conftest import tiny_config  # noqa: E402
from llm_jax import hf  # noqa: E402
from llm_jax.convert import convert  # noqa: E402
from llm_jax.tokenizer.bytes import ByteTokenizer  # noqa: E402
from llm_jax.train import state as state_lib  # noqa: E402
from llm_jax.train.checkpoint import Checkpointer  # noqa: E402
from llm_jax.train.loop import stage_dir  # noqa: E402


def random_params(model_cfg, seed: int):
  """Random weights drawn on the host (norm scales near one, biases nonzero), placed on the mesh."""
  graphdef, abstract = state_lib.model_graphdef_and_shapes(model_cfg)
  rs = np.random.RandomState(seed)

  def draw(path, leaf):
    shape = leaf.get_value().shape
    value = rs.normal(0, 0.2, shape) + (1.0 if path[-1].key == "scale" else 0.0)
    return leaf.replace(jax.device_put(value.astype(np.float32)))
  return graphdef, jax.tree_util.tree_map_with_path(draw, abstract, is_leaf=lambda x: isinstance(x, nnx.Variable))


def logits_pair(graphdef, params, folder, T: int = 20):
  """(ours, transformers') logits on the same random tokens."""
  model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
  ids_1xT = np.random.RandomState(0).randint(0, model.config.vocab_size, (1, T)).astype(np.int32)
  ours = jax.jit(lambda p, t, s: nnx.merge(graphdef, p)(t, s)[0])(params, ids_1xT, np.arange(T, dtype=np.int32)[None])
  with torch.no_grad():
    theirs = model(torch.tensor(ids_1xT, dtype=torch.long)).logits.numpy()
  return np.asarray(ours), theirs


def test_workdir_stage_to_llama(tmp_path):
  """`python -m llm_jax.convert --workdir=... --to-hf=...` on a (fabricated) trained stage."""
  cfg = tiny_config()
  cfg.model.rope_scaling.update(dict(factor=8.0, original_max_position=512))
  graphdef, params = random_params(cfg.model, 0)
  workdir = str(tmp_path / "run")
  ckpt = Checkpointer(stage_dir(workdir, "base"), cfg.checkpoint)
  ckpt.save(1, {"params": params}, force=True)
  ckpt.close()
  with open(os.path.join(stage_dir(workdir, "base"), "config.json"), "w") as f:
    json.dump(cfg.to_dict(), f)
  ByteTokenizer().save(os.path.join(workdir, "tokenizer"))
  out = convert(str(tmp_path / "hf"), workdir=workdir)
  config = json.load(open(os.path.join(out, "config.json")))
  assert config["architectures"] == ["LlamaForCausalLM"] and config["tie_word_embeddings"]
  assert config["bos_token_id"] == ByteTokenizer().bos_id
  ours, theirs = logits_pair(graphdef, params, out)
  print(f"our llama -> HF: max |logit diff| = {np.abs(ours - theirs).max():.2e}")
  np.testing.assert_allclose(ours, theirs, atol=1e-4)
  assert "load_tokenizer" in open(os.path.join(out, "README.md")).read()
  _, again, model_cfg, tokenizer = hf.load_hf(out)  # our tokenizer travels in llm_jax_tokenizer/
  assert isinstance(tokenizer, ByteTokenizer) and model_cfg.rope_scaling.factor == 8.0
  for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_gpt2_untied_bfloat16_sharded(tmp_path):
  cfg = tiny_config().model
  cfg.update(dict(vocab_size=96, d_model=48, num_heads=3, num_kv_heads=3, mlp_dim=80, norm="layernorm",
                  position="learned", mlp="gelu", use_bias=True, tie_embeddings=False))
  graphdef, params = random_params(cfg, 1)
  hf.save_hf(graphdef, params, cfg, None, str(tmp_path), dtype="bfloat16", max_shard_bytes=20_000)
  assert os.path.exists(tmp_path / "model.safetensors.index.json")
  assert json.load(open(tmp_path / "config.json"))["architectures"] == ["GPT2LMHeadModel"]
  ours, theirs = logits_pair(graphdef, params, str(tmp_path))
  print(f"our gpt2 -> HF (bfloat16 weights): max |logit diff| = {np.abs(ours - theirs).max():.2e}")
  np.testing.assert_allclose(ours, theirs, atol=0.1)  # bfloat16 rounding of the weights
  _, again, _, _ = hf.load_hf(str(tmp_path))
  rounded = jax.tree.map(lambda x: np.asarray(x).astype(jax.numpy.bfloat16).astype(np.float32), params)
  for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(rounded)):
    np.testing.assert_array_equal(np.asarray(a), b)


@pytest.mark.parametrize("change", [dict(qk_norm=True), dict(mlp="relu2"), dict(logit_softcap=30.0),
                                    dict(use_bias=True), dict(norm="layernorm")])
def test_inexpressible_models_fail_export(change, tmp_path):
  cfg = ml_collections.ConfigDict(tiny_config().model.to_dict())
  cfg.update(change)
  with pytest.raises(ValueError, match="no Hugging Face architecture for .* export supports"):
    hf.save_hf(None, None, cfg, None, str(tmp_path))
  assert not os.listdir(tmp_path)
