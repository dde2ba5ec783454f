"""Model hyper-parameters: one ConfigDict section, every switch documented where it is defined."""

import ml_collections


def default_config() -> ml_collections.ConfigDict:
  """GPT-2 124M. Presets in configs/ override fields; `validate` checks the combination."""
  c = ml_collections.ConfigDict()
  c.vocab_size = 50304  # embedding rows; >= tokenizer.vocab_size (padded to a multiple of 64 is fastest)
  c.d_model = 768  # residual stream width
  c.num_layers = 12
  c.num_heads = 12  # query heads
  c.num_kv_heads = 12  # key/value heads; < num_heads is grouped-query attention (Llama)
  c.head_dim = 0  # 0: d_model // num_heads
  c.mlp_dim = 3072  # hidden width of the MLP
  c.max_seq_len = 1024  # longest context (learned position table size; RoPE has no table)
  c.norm = "layernorm"  # "layernorm" (GPT-2, with bias unless use_bias=False) | "rmsnorm" (Llama)
  c.norm_eps = 1e-5
  c.position = "learned"  # "learned" (GPT-2 absolute table) | "rope" (rotary, Llama)
  c.rope_theta = 10000.0  # RoPE base; Llama 3 uses 500000
  # Llama-3.1 frequency scaling; factor 0 disables. Fields follow HF `rope_scaling` of type "llama3".
  c.rope_scaling = ml_collections.ConfigDict(dict(
      factor=0.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position=8192))
  c.mlp = "gelu"  # "gelu" (GPT-2, tanh approximation) | "swiglu" (Llama) | "relu2" (squared ReLU)
  c.use_bias = True  # biases in linear layers and LayerNorm (GPT-2); False = bias-free
  c.tie_embeddings = True  # output head shares the token embedding (GPT-2); False = separate head (Llama)
  c.qk_norm = False  # RMS-normalise queries and keys per head before attention
  c.logit_softcap = 0.0  # >0: logits = cap * tanh(logits / cap) (Gemma 2); 0 disables
  c.init_std = 0.02  # normal init std; residual output projections are scaled by 1/sqrt(2 * num_layers)
  c.dtype = "float32"  # compute dtype: "float32" | "bfloat16" (parameters stay float32: master weights)
  # "xla" (reference einsum, any device) | "jax" (jax.nn.dot_product_attention, XLA picks the kernel) |
  # "cudnn" (cuDNN flash attention, GPU) | "splash" (Pallas splash attention, TPU). Decoding with a KV cache
  # uses "xla" for "cudnn" and "splash".
  c.attention = "xla"
  # rematerialisation per block: "none" (keep activations) | "full" (recompute the block in the backward
  # pass: least memory) | "save_dots" (keep matmul outputs, recompute the rest)
  c.remat = "none"
  c.scan_layers = False  # stack blocks on a leading `layers` axis and jax.lax.scan over them (faster compiles)
  return c


def head_dim(cfg) -> int:
  return cfg.head_dim or cfg.d_model // cfg.num_heads


def validate(cfg) -> None:
  """One-line errors for combinations that cannot build."""
  choices = dict(norm=("layernorm", "rmsnorm"), position=("learned", "rope"),
                 mlp=("gelu", "swiglu", "relu2"), dtype=("float32", "bfloat16"),
                 attention=("xla", "jax", "cudnn", "splash"), remat=("none", "full", "save_dots"))
  for key, allowed in choices.items():
    if cfg[key] not in allowed:
      raise ValueError(f"model.{key}={cfg[key]!r} is not one of {allowed}")
  if not cfg.head_dim and cfg.d_model % cfg.num_heads:
    raise ValueError(f"model.d_model={cfg.d_model} is not divisible by model.num_heads={cfg.num_heads}; "
                     "change one or set model.head_dim")
  if cfg.num_heads % cfg.num_kv_heads:
    raise ValueError(f"model.num_heads={cfg.num_heads} must be a multiple of model.num_kv_heads={cfg.num_kv_heads}")
  if cfg.position == "rope" and head_dim(cfg) % 2:
    raise ValueError(f"RoPE needs an even head_dim, got {head_dim(cfg)}")


def shape_keys(cfg) -> dict:
  """The fields that decide parameter shapes: a checkpoint only restores into a model with the same."""
  keys = ("vocab_size", "d_model", "num_layers", "num_heads", "num_kv_heads", "mlp_dim", "norm", "position",
          "mlp", "use_bias", "tie_embeddings", "qk_norm")
  out = {k: cfg[k] for k in keys}
  out["head_dim"] = head_dim(cfg)
  if cfg.position == "learned":
    out["max_seq_len"] = cfg.max_seq_len
  if cfg.get("scan_layers"):  # stacked parameters; absent (not False) keeps older checkpoints' metadata valid
    out["scan_layers"] = True
  return out
