"""GPT-2 (Radford et al., 2019) pretraining. Presets: 124m (default), 350m, 774m, 1558m.

python -m llm_jax.main --config=configs/gpt2.py:350m --workdir=runs/gpt2_350m
"""

from llm_jax.config import base_config

# preset: (layers, width, heads)
SIZES = {"124m": (12, 768, 12), "350m": (24, 1024, 16), "774m": (36, 1280, 20), "1558m": (48, 1600, 25),
         "6x256": (6, 256, 4)}  # 6x256: the CPU benchmark shape


def get_config(preset: str = "124m"):
  if preset not in SIZES:
    raise ValueError(f"unknown gpt2 preset {preset!r}; choose one of {', '.join(SIZES)}")
  layers, width, heads = SIZES[preset]
  c = base_config()
  c.model.update(dict(num_layers=layers, d_model=width, num_heads=heads, num_kv_heads=heads, mlp_dim=4 * width,
                      max_seq_len=1024, norm="layernorm", position="learned", mlp="gelu", use_bias=True,
                      tie_embeddings=True, vocab_size=0, dtype="bfloat16"))
  c.tokenizer.vocab_size = 50257
  c.data.source = "hf:HuggingFaceFW/fineweb-edu/sample-10BT"
  c.train.update(dict(steps=19073, batch_size=512, seq_len=1024, lr=6e-4, warmup_steps=700, weight_decay=0.1,
                      log_every=10, eval_every=250, eval_batches=20))
  c.checkpoint.every_steps = 1000
  return c
