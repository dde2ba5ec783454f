"""The transformer: cache decoding equals a full forward pass; packed documents never see each other."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from llm_jax.model import Transformer, default_config
from llm_jax.model.rope import inverse_frequencies

GPT2 = dict(norm="layernorm", position="learned", mlp="gelu", use_bias=True, tie_embeddings=True)
LLAMA = dict(norm="rmsnorm", position="rope", mlp="swiglu", use_bias=False, tie_embeddings=False, num_kv_heads=1)
MODERN = dict(norm="rmsnorm", position="rope", mlp="relu2", use_bias=False, qk_norm=True, logit_softcap=15.0)


def tiny(**overrides):
  c = default_config()
  c.update(dict(vocab_size=61, d_model=32, num_layers=2, num_heads=4, num_kv_heads=2, mlp_dim=48, max_seq_len=40))
  c.update(overrides)
  return c


@pytest.mark.parametrize("variant", [GPT2, LLAMA, MODERN], ids=["gpt2", "llama_gqa", "qknorm_relu2_softcap"])
def test_cache_decoding_matches_full_forward(variant):
  cfg = tiny(**variant)
  if variant is LLAMA:
    cfg.rope_scaling.update(dict(factor=8.0, original_max_position=16))
  model = Transformer(cfg, nnx.Rngs(1))
  tokens_BxT = jax.random.randint(jax.random.PRNGKey(0), (2, 12), 0, cfg.vocab_size)
  positions_BxT = jnp.broadcast_to(jnp.arange(12), (2, 12))
  full_BxTxV, _ = model(tokens_BxT, positions_BxT)
  cache = model.init_cache(2, 16)
  prefill, cache = model(tokens_BxT[:, :5], positions_BxT[:, :5], cache=cache)
  steps = [prefill]
  for t in range(5, 12):
    logits, cache = model(tokens_BxT[:, t:t + 1], positions_BxT[:, t:t + 1], cache=cache)
    steps.append(logits)
  np.testing.assert_allclose(jnp.concatenate(steps, 1), full_BxTxV, atol=1e-5)


def test_segment_ids_isolate_packed_documents():
  cfg = tiny(**LLAMA)
  model = Transformer(cfg, nnx.Rngs(0))
  tokens = jax.random.randint(jax.random.PRNGKey(0), (1, 10), 0, cfg.vocab_size)
  segments = jnp.array([[1] * 4 + [2] * 6])
  positions = jnp.array([[0, 1, 2, 3, 0, 1, 2, 3, 4, 5]])
  logits, _ = model(tokens, positions, segment_ids=segments)
  # changing the first document must not change anything in the second
  other = tokens.at[0, :4].set((tokens[0, :4] + 7) % cfg.vocab_size)
  logits_other, _ = model(other, positions, segment_ids=segments)
  np.testing.assert_allclose(logits[0, 4:], logits_other[0, 4:], atol=1e-6)
  assert not np.allclose(logits[0, :4], logits_other[0, :4])
  # and the second document alone gives the same logits as inside the pack
  alone, _ = model(tokens[:, 4:], positions[:, 4:])
  np.testing.assert_allclose(logits[0, 4:], alone[0], atol=1e-5)


def test_attention_implementations_agree():
  cfg = tiny(**LLAMA)
  tokens = jax.random.randint(jax.random.PRNGKey(0), (2, 9), 0, cfg.vocab_size)
  positions = jnp.broadcast_to(jnp.arange(9), (2, 9))
  ref, _ = Transformer(cfg, nnx.Rngs(0))(tokens, positions)
  cfg.attention = "jax"
  other, _ = Transformer(cfg, nnx.Rngs(0))(tokens, positions)
  np.testing.assert_allclose(ref, other, atol=1e-5)


def test_llama31_rope_scaling_follows_the_published_rule():
  cfg = tiny(**LLAMA).rope_scaling
  cfg.update(dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position=8192))
  base = inverse_frequencies(128, 500000.0)
  scaled = inverse_frequencies(128, 500000.0, cfg)
  wavelen = 2 * np.pi / base
  np.testing.assert_allclose(scaled[wavelen < 8192 / 4], base[wavelen < 8192 / 4])  # high frequencies kept
  np.testing.assert_allclose(scaled[wavelen > 8192], base[wavelen > 8192] / 8, rtol=1e-6)  # low ones slowed


def test_bad_shapes_fail_with_a_clear_message():
  with pytest.raises(ValueError, match="num_kv_heads"):
    Transformer(tiny(num_heads=4, num_kv_heads=3), nnx.Rngs(0))
  with pytest.raises(ValueError, match="model.mlp"):
    Transformer(tiny(mlp="tanh"), nnx.Rngs(0))


def test_every_parameter_has_logical_axis_names():
  model = Transformer(tiny(**GPT2), nnx.Rngs(0))
  allowed = {"batch", "length", "embed", "mlp", "heads", "kv_heads", "head_dim", "vocab", "layers"}
  for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
    names = var.get_metadata()["out_sharding"]
    assert len(names) == var.value.ndim and set(names) <= allowed, (path, names)
