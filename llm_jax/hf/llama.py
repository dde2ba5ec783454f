"""Llama 2 / 3 / 3.1 / 3.2 (LlamaForCausalLM) <-> our model: RMSNorm, RoPE, SwiGLU, no biases.

HF stores linear weights as torch.nn.Linear, [out, in]. Its RoPE uses the "rotate_half" layout, which
is ours, so q/k weights need no permutation.
"""

from llm_jax.hf.params import Entry, linear, same
from llm_jax.model import config as model_config_lib

ARCHITECTURE = "LlamaForCausalLM"
PREFIX = "model."


def _refuse(key: str, value, why: str):
  raise ValueError(f"Llama config {key}={value!r} is not supported: {why}")


def _rope(hf: dict) -> tuple[float, dict]:
  """(theta, scaling fields) from `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling`."""
  params = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
  theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
  kind = params.get("rope_type", params.get("type", "default"))
  if kind == "default":
    return theta, dict(factor=0.0)
  if kind != "llama3":
    _refuse("rope type", kind, "only default RoPE and Llama 3.1 scaling (\"llama3\") are implemented")
  return theta, dict(factor=float(params["factor"]), low_freq_factor=float(params["low_freq_factor"]),
                     high_freq_factor=float(params["high_freq_factor"]),
                     original_max_position=int(params["original_max_position_embeddings"]))


def model_config(hf: dict):
  """Our model config for an HF Llama config.json dict."""
  if hf.get("hidden_act", "silu") != "silu":
    _refuse("hidden_act", hf["hidden_act"], "the Llama MLP here is SwiGLU (silu)")
  for key in ("attention_bias", "mlp_bias"):
    if hf.get(key):
      _refuse(key, hf[key], "our Llama blocks have no biases")
  if hf.get("partial_rotary_factor", 1.0) != 1.0:
    _refuse("partial_rotary_factor", hf["partial_rotary_factor"], "RoPE rotates the whole head here")
  theta, scaling = _rope(hf)
  E, H = hf["hidden_size"], hf["num_attention_heads"]
  c = model_config_lib.default_config()
  c.update(dict(vocab_size=hf["vocab_size"], d_model=E, num_layers=hf["num_hidden_layers"], num_heads=H,
                num_kv_heads=hf.get("num_key_value_heads") or H, head_dim=hf.get("head_dim") or E // H,
                mlp_dim=hf["intermediate_size"], max_seq_len=hf.get("max_position_embeddings", 2048),
                norm="rmsnorm", norm_eps=hf.get("rms_norm_eps", 1e-6), position="rope", rope_theta=theta,
                mlp="swiglu", use_bias=False, tie_embeddings=hf.get("tie_word_embeddings", False), qk_norm=False,
                logit_softcap=0.0, dtype="float32"))
  c.rope_scaling.update(scaling)
  return c


def matches(cfg) -> bool:
  """True when our model config is a Llama."""
  return (cfg.norm == "rmsnorm" and cfg.position == "rope" and cfg.mlp == "swiglu" and not cfg.use_bias
          and not cfg.qk_norm and not cfg.logit_softcap)


def hf_config(cfg, bos_id: int | None, eos_id: int | None) -> dict:
  """Written with both the transformers 5 `rope_parameters` and the older `rope_theta`/`rope_scaling`."""
  scaling = None
  if cfg.rope_scaling.factor:
    s = cfg.rope_scaling
    scaling = {"rope_type": "llama3", "factor": s.factor, "low_freq_factor": s.low_freq_factor,
               "high_freq_factor": s.high_freq_factor, "original_max_position_embeddings": s.original_max_position}
  params = {"rope_type": "default", **(scaling or {}), "rope_theta": cfg.rope_theta}
  return {"architectures": [ARCHITECTURE], "model_type": "llama", "vocab_size": cfg.vocab_size,
          "hidden_size": cfg.d_model, "intermediate_size": cfg.mlp_dim, "num_hidden_layers": cfg.num_layers,
          "num_attention_heads": cfg.num_heads, "num_key_value_heads": cfg.num_kv_heads,
          "head_dim": model_config_lib.head_dim(cfg), "hidden_act": "silu",
          "max_position_embeddings": cfg.max_seq_len, "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
          "rope_scaling": scaling, "rope_parameters": params, "tie_word_embeddings": bool(cfg.tie_embeddings),
          "attention_bias": False, "mlp_bias": False, "bos_token_id": bos_id, "eos_token_id": eos_id,
          "dtype": "float32"}


def ignore(name: str) -> bool:
  """Stored tensors the model does not need: old RoPE buffers, a head tied to the embedding."""
  return name.endswith("rotary_emb.inv_freq") or name == "lm_head.weight"


def entries(cfg) -> list[Entry]:
  E, H, K, F, V = cfg.d_model, cfg.num_heads, cfg.num_kv_heads, cfg.mlp_dim, cfg.vocab_size
  D = model_config_lib.head_dim(cfg)
  out = [same("model.embed_tokens.weight", "embed", (V, E))]
  for i in range(cfg.num_layers):
    p, o = f"model.layers.{i}.", f"blocks.{i}."
    out += [
        same(p + "input_layernorm.weight", o + "attn_norm.scale", (E,)),
        linear(p + "self_attn.q_proj.weight", o + "attn.wq", (E,), (H, D)),
        linear(p + "self_attn.k_proj.weight", o + "attn.wk", (E,), (K, D)),
        linear(p + "self_attn.v_proj.weight", o + "attn.wv", (E,), (K, D)),
        linear(p + "self_attn.o_proj.weight", o + "attn.wo", (H, D), (E,)),
        same(p + "post_attention_layernorm.weight", o + "mlp_norm.scale", (E,)),
        linear(p + "mlp.gate_proj.weight", o + "mlp.w_gate", (E,), (F,)),
        linear(p + "mlp.up_proj.weight", o + "mlp.w_in", (E,), (F,)),
        linear(p + "mlp.down_proj.weight", o + "mlp.w_out", (F,), (E,)),
    ]
  out.append(same("model.norm.weight", "final_norm.scale", (E,)))
  if not cfg.tie_embeddings:
    out.append(linear("lm_head.weight", "head", (E,), (V,)))
  return out
