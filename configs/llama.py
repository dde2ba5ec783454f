"""Llama-3-style model (RMSNorm, RoPE with 3.1 scaling, SwiGLU, grouped-query attention) from scratch to
assistant (experiments/speedrun.py): FineWeb-Edu pretraining, SFT, GRPO on GSM8K, evaluation, report
(the post-training settings are configs/gpt2.py's at a 2048-token context).

Presets: 150m (a small research size, default), 1b and 3b (Llama 3.2 shapes), 8b (Llama 3.1 8B shape).
python -m llm_jax.main --config=configs/llama.py:1b --workdir=runs/llama1b --config.mesh.fsdp=-1
"""

import importlib.util
import os

from llm_jax.config import base_config
from llm_jax.posttrain.config import add_posttrain

# preset: layers, width, heads, kv heads, mlp width, tied embeddings, RoPE scaling factor
SIZES = {
    "150m": (12, 768, 12, 4, 2048, True, 0.0),
    "1b": (16, 2048, 32, 8, 8192, True, 32.0),
    "3b": (28, 3072, 24, 8, 8192, True, 32.0),
    "8b": (32, 4096, 32, 8, 14336, False, 8.0),
}


def get_config(preset: str = "150m"):
  if preset not in SIZES:
    raise ValueError(f"unknown llama preset {preset!r}; choose one of {', '.join(SIZES)}")
  layers, width, heads, kv_heads, mlp, tied, factor = SIZES[preset]
  c = add_posttrain(base_config())
  c.experiment = "experiments/speedrun.py"
  c.model.update(dict(num_layers=layers, d_model=width, num_heads=heads, num_kv_heads=kv_heads, mlp_dim=mlp,
                      max_seq_len=2048, norm="rmsnorm", norm_eps=1e-5, position="rope", rope_theta=500000.0,
                      mlp="swiglu", use_bias=False, tie_embeddings=tied, vocab_size=0, dtype="bfloat16"))
  c.model.rope_scaling.factor = factor
  c.tokenizer.vocab_size = 65536
  c.data.source = "hf:HuggingFaceFW/fineweb-edu/sample-10BT"
  c.train.update(dict(steps=20000, batch_size=256, seq_len=2048, lr=3e-4, warmup_steps=2000, b2=0.95,
                      weight_decay=0.1, log_every=10, eval_every=500, eval_batches=20))
  c.checkpoint.every_steps = 1000
  gpt2_module().full_scale_posttrain(c, context=2048, rl_lr=1e-6)
  c.sft.train.batch_size = 32  # sequences of 2048 tokens
  return c


def gpt2_module():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpt2.py")
  spec = importlib.util.spec_from_file_location("llm_jax_gpt2_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
