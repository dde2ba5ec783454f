"""nano: the whole pipeline on 2 CPU cores in minutes, no network. The README's main command.

Trains its own BPE tokenizer on the built-in corpus (Python's own documentation, read as files), then a
small Llama-style model.
"""

from llm_jax.config import base_config


def get_config(preset: str = ""):
  c = base_config()
  c.data.source = "builtin"
  c.tokenizer.vocab_size = 4096
  c.tokenizer.max_train_bytes = 8_000_000
  c.model.update(dict(num_layers=4, d_model=128, num_heads=4, num_kv_heads=2, mlp_dim=384, max_seq_len=512,
                      norm="rmsnorm", position="rope", rope_theta=10000.0, mlp="swiglu", use_bias=False,
                      tie_embeddings=True, vocab_size=0, dtype="float32"))
  c.train.update(dict(steps=400, batch_size=16, seq_len=256, lr=4e-3, warmup_steps=40, min_lr_ratio=0.05,
                      weight_decay=0.1, log_every=20, eval_every=100, eval_batches=4))
  c.checkpoint.every_steps = 100
  c.sample.prompts = ("The meaning of", "The built-in function", "Exceptions are")
  if preset == "tiny":  # seconds: for tests and smoke runs
    c.data.max_docs = 400
    c.tokenizer.vocab_size = 512
    c.model.update(dict(num_layers=2, d_model=64, num_heads=2, num_kv_heads=1, mlp_dim=128, max_seq_len=128))
    c.train.update(dict(steps=40, batch_size=4, seq_len=64, warmup_steps=2, log_every=5, eval_every=10,
                        eval_batches=2))
    c.checkpoint.every_steps = 5
    c.sample.max_new_tokens = 16
  return c
