"""GPT-2 (GPT2LMHeadModel) <-> our model: LayerNorm with bias, learned positions, tanh-GELU, biases.

HF GPT-2 stores linear weights as Conv1D, [in, out], and fuses q, k, v into one `c_attn`.
"""

import numpy as np

from llm_jax.hf.params import Entry, conv1d, linear, same
from llm_jax.model import config as model_config_lib

ARCHITECTURE = "GPT2LMHeadModel"
PREFIX = "transformer."  # hub GPT-2 files store names without it
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")  # all the tanh approximation we compute


def _refuse(key: str, value, why: str):
  raise ValueError(f"GPT-2 config {key}={value!r} is not supported: {why}")


def model_config(hf: dict):
  """Our model config for an HF GPT-2 config.json dict."""
  act = hf.get("activation_function", "gelu_new")
  if act not in TANH_GELUS:
    _refuse("activation_function", act, f"our GELU is the tanh approximation ({', '.join(TANH_GELUS)})")
  for key, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                  ("add_cross_attention", False)):
    if hf.get(key, ok) != ok:
      _refuse(key, hf[key], f"only {ok} is implemented")
  E = hf["n_embd"]
  c = model_config_lib.default_config()
  c.update(dict(vocab_size=hf["vocab_size"], d_model=E, num_layers=hf["n_layer"], num_heads=hf["n_head"],
                num_kv_heads=hf["n_head"], head_dim=0, mlp_dim=hf.get("n_inner") or 4 * E,
                max_seq_len=hf["n_positions"], norm="layernorm", norm_eps=hf.get("layer_norm_epsilon", 1e-5),
                position="learned", mlp="gelu", use_bias=True, tie_embeddings=hf.get("tie_word_embeddings", True),
                qk_norm=False, logit_softcap=0.0, dtype="float32"))
  c.rope_scaling.factor = 0.0
  return c


def matches(cfg) -> bool:
  """True when our model config is a GPT-2."""
  return (cfg.norm == "layernorm" and cfg.position == "learned" and cfg.mlp == "gelu" and cfg.use_bias
          and not cfg.qk_norm and not cfg.logit_softcap and cfg.num_kv_heads == cfg.num_heads
          and model_config_lib.head_dim(cfg) * cfg.num_heads == cfg.d_model)


def hf_config(cfg, bos_id: int | None, eos_id: int | None) -> dict:
  return {"architectures": [ARCHITECTURE], "model_type": "gpt2", "vocab_size": cfg.vocab_size,
          "n_positions": cfg.max_seq_len, "n_embd": cfg.d_model, "n_layer": cfg.num_layers,
          "n_head": cfg.num_heads, "n_inner": cfg.mlp_dim, "activation_function": "gelu_new",
          "layer_norm_epsilon": cfg.norm_eps, "tie_word_embeddings": bool(cfg.tie_embeddings),
          "scale_attn_weights": True, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
          "bos_token_id": bos_id, "eos_token_id": eos_id, "dtype": "float32"}


def ignore(name: str) -> bool:
  """Stored tensors the model does not need: old causal-mask buffers, a head tied to the embedding."""
  return name.endswith((".attn.bias", ".attn.masked_bias")) or name == "lm_head.weight"


def _fused_qkv(hf: str, ours: tuple[str, str, str], E: int, H: int, D: int, weight: bool) -> Entry:
  """c_attn [E, 3E] (weight) or [3E] (bias) <-> wq, wk, wv [E, H, D] or bq, bk, bv [H, D]."""
  shape, axis = ((E, H, D), 1) if weight else ((H, D), 0)
  flat_shape = (E, H * D) if weight else (H * D,)
  return Entry(hf, (E, 3 * H * D) if weight else (3 * H * D,), ours,
               lambda w: tuple(x.reshape(shape) for x in np.split(w, 3, axis=axis)),
               lambda q, k, v: np.concatenate([x.reshape(flat_shape) for x in (q, k, v)], axis=axis))


def entries(cfg) -> list[Entry]:
  E, H, F, V = cfg.d_model, cfg.num_heads, cfg.mlp_dim, cfg.vocab_size
  D = E // H
  out = [same("transformer.wte.weight", "embed", (V, E)),
         same("transformer.wpe.weight", "pos_embed", (cfg.max_seq_len, E))]
  for i in range(cfg.num_layers):
    p, o = f"transformer.h.{i}.", f"blocks.{i}."
    out += [
        same(p + "ln_1.weight", o + "attn_norm.scale", (E,)),
        same(p + "ln_1.bias", o + "attn_norm.bias", (E,)),
        _fused_qkv(p + "attn.c_attn.weight", (o + "attn.wq", o + "attn.wk", o + "attn.wv"), E, H, D, True),
        _fused_qkv(p + "attn.c_attn.bias", (o + "attn.bq", o + "attn.bk", o + "attn.bv"), E, H, D, False),
        conv1d(p + "attn.c_proj.weight", o + "attn.wo", (H, D), (E,)),
        same(p + "attn.c_proj.bias", o + "attn.bo", (E,)),
        same(p + "ln_2.weight", o + "mlp_norm.scale", (E,)),
        same(p + "ln_2.bias", o + "mlp_norm.bias", (E,)),
        conv1d(p + "mlp.c_fc.weight", o + "mlp.w_in", (E,), (F,)),
        same(p + "mlp.c_fc.bias", o + "mlp.b_in", (F,)),
        conv1d(p + "mlp.c_proj.weight", o + "mlp.w_out", (F,), (E,)),
        same(p + "mlp.c_proj.bias", o + "mlp.b_out", (E,)),
    ]
  out += [same("transformer.ln_f.weight", "final_norm.scale", (E,)),
          same("transformer.ln_f.bias", "final_norm.bias", (E,))]
  if not cfg.tie_embeddings:
    out.append(linear("lm_head.weight", "head", (E,), (V,)))
  return out
