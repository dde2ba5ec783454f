"""nano: the whole pipeline on 2 CPU cores in about 20 minutes, no network. The README's main command.

  python -m llm_jax.main --config=configs/nano.py --workdir=runs/nano

experiments/speedrun.py: trains its own BPE tokenizer on the built-in corpus (Python's own documentation,
read as files), pretrains a small Llama-style model, fine-tunes it into an assistant on synthetic
conversations, improves its arithmetic with GRPO, evaluates the SFT and RL models and writes report.md.
Presets: tiny (seconds: tokenizer, data, pretraining, samples, report; the smoke test of tests/test_main.py),
tiny_full (every stage at tiny size, a couple of minutes; on a tiny run: --config.stages=sft,rl,eval,report).
"""

from llm_jax.config import base_config
from llm_jax.posttrain.config import add_posttrain


def get_config(preset: str = ""):
  c = add_posttrain(base_config())
  c.experiment = "experiments/speedrun.py"
  c.data.source = "builtin"
  c.tokenizer.vocab_size = 4096
  c.tokenizer.max_train_bytes = 8_000_000
  c.model.update(dict(num_layers=4, d_model=128, num_heads=4, num_kv_heads=2, mlp_dim=384, max_seq_len=512,
                      norm="rmsnorm", position="rope", rope_theta=10000.0, mlp="swiglu", use_bias=False,
                      tie_embeddings=True, vocab_size=0, dtype="float32"))
  c.train.update(dict(steps=300, batch_size=16, seq_len=256, lr=4e-3, warmup_steps=30, min_lr_ratio=0.05,
                      weight_decay=0.1, log_every=20, eval_every=100, eval_batches=4))
  c.checkpoint.every_steps = 100
  c.sample.prompts = ("The meaning of", "The built-in function", "Exceptions are")
  # arithmetic the nano model can partly solve after SFT (1-2 additions/subtractions, numbers up to 10)
  c.tasks.arithmetic.update(dict(min_steps=1, max_steps=2, max_value=10, events="add,sub"))
  # SFT: ~1.6 epochs of the synthetic mixture (identity, arithmetic, spelling); 256-token rows hold 2-4 of them
  c.sft.mixture = "identity@0.1,arithmetic@0.6,spelling@0.3"
  c.sft.num_conversations = 12000
  c.sft.train.update(dict(steps=350, batch_size=16, seq_len=256, lr=2e-3, warmup_steps=20, log_every=25,
                          eval_every=175, eval_batches=4))
  # GRPO on arithmetic word problems: 20 steps x 8 prompts x 8 replies, 2 updates per step; held-out pass@1 and
  # pass@16 (48 prompts x 16 replies) before and after only. Truncated replies keep their 0 reward (masking
  # them lets a small model drift into rambling)
  c.rl.update(dict(task="arithmetic", steps=20, prompts_per_step=8, group_size=8, max_prompt_len=72,
                   max_new_tokens=72, minibatches=2, truncation="none", eval_every=0, eval_examples=48,
                   eval_samples=16, samples_every=10, checkpoint_every=10))
  c.rl.optim.update(dict(lr=4e-5, warmup_steps=3))  # 1e-4 drifts the sharp SFT model (per-token KL 0.2, pass@16 down)
  c.eval.update(dict(tasks="loss,chat_loss,identity,arithmetic,spelling", num_examples=32, batch_size=32,
                     loss_batches=4))
  if preset in ("tiny", "tiny_full"):  # seconds: for tests and smoke runs
    c.data.max_docs = 400
    c.tokenizer.vocab_size = 512
    c.model.update(dict(num_layers=2, d_model=64, num_heads=2, num_kv_heads=1, mlp_dim=128, max_seq_len=128))
    c.train.update(dict(steps=40, batch_size=4, seq_len=64, warmup_steps=2, log_every=5, eval_every=10,
                        eval_batches=2))
    c.checkpoint.every_steps = 5
    c.sample.max_new_tokens = 16
    c.tasks.arithmetic.update(dict(min_steps=1, max_steps=2))  # short enough for the 128-token context
    c.sft.update(dict(num_conversations=64, val_conversations=8, checkpoint_every=4))
    c.sft.train.update(dict(steps=4, batch_size=4, seq_len=128, warmup_steps=1, log_every=2, eval_every=4,
                            eval_batches=1))
    c.rl.update(dict(steps=2, prompts_per_step=2, group_size=4, max_prompt_len=96, max_new_tokens=32,
                     minibatches=1, eval_examples=2, eval_samples=4, eval_ks="1,4", samples_every=1,
                     checkpoint_every=2))
    c.eval.update(dict(tasks="loss,arithmetic", num_examples=4, batch_size=4, max_new_tokens=32, loss_batches=1))
    c.chat_sample.max_new_tokens = 16
    if preset == "tiny":  # post-training compiles more programs than it trains: left to tiny_full
      c.stages = "data,pretrain,samples,report"
  elif preset:
    raise ValueError(f"unknown nano preset {preset!r}; use tiny, tiny_full or nothing")
  return c
