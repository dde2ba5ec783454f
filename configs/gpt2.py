"""GPT-2 (Radford et al., 2019) from scratch to assistant (experiments/speedrun.py): FineWeb-Edu
pretraining, SFT on SmolTalk plus the synthetic tasks, GRPO on GSM8K, evaluation, report.
Presets: 124m (default), 350m, 774m, 1558m (6x256: the CPU benchmark shape).

python -m llm_jax.main --config=configs/gpt2.py:350m --workdir=runs/gpt2_350m
  (pretraining only: --config.stages=data,pretrain,samples,report)
"""

from llm_jax.config import base_config
from llm_jax.posttrain.config import add_posttrain

# preset: (layers, width, heads)
SIZES = {"124m": (12, 768, 12), "350m": (24, 1024, 16), "774m": (36, 1280, 20), "1558m": (48, 1600, 25),
         "6x256": (6, 256, 4)}  # 6x256: the CPU benchmark shape


def get_config(preset: str = "124m"):
  if preset not in SIZES:
    raise ValueError(f"unknown gpt2 preset {preset!r}; choose one of {', '.join(SIZES)}")
  layers, width, heads = SIZES[preset]
  c = add_posttrain(base_config())
  c.experiment = "experiments/speedrun.py"
  c.model.update(dict(num_layers=layers, d_model=width, num_heads=heads, num_kv_heads=heads, mlp_dim=4 * width,
                      max_seq_len=1024, norm="layernorm", position="learned", mlp="gelu", use_bias=True,
                      tie_embeddings=True, vocab_size=0, dtype="bfloat16"))
  c.tokenizer.vocab_size = 50257
  c.data.source = "hf:HuggingFaceFW/fineweb-edu/sample-10BT"
  c.train.update(dict(steps=19073, batch_size=512, seq_len=1024, lr=6e-4, warmup_steps=700, weight_decay=0.1,
                      log_every=10, eval_every=250, eval_batches=20))
  c.checkpoint.every_steps = 1000
  full_scale_posttrain(c, context=1024, rl_lr=3e-6)
  return c


def full_scale_posttrain(c, context: int, rl_lr: float) -> None:
  """SFT on SmolTalk (+ identity, arithmetic, spelling) and GRPO on GSM8K (both need `datasets` and the
  hub); shared with configs/llama.py."""
  c.sft.update(dict(mixture="hf:smoltalk@0.8,identity@0.02,arithmetic@0.1,spelling@0.08",
                    num_conversations=200_000, val_conversations=1000, checkpoint_every=500))
  c.sft.train.update(dict(steps=3000, batch_size=64, seq_len=context, lr=1e-4, warmup_steps=100, min_lr_ratio=0.0,
                          weight_decay=0.0, log_every=10, eval_every=250, eval_batches=10))
  c.rl.update(dict(task="gsm8k", steps=500, prompts_per_step=32, group_size=16, max_prompt_len=256,
                   max_new_tokens=min(512, context - 256), rollout_batch=128, minibatches=4,
                   eval_every=50, eval_examples=256, eval_samples=16, samples_every=50, checkpoint_every=50))
  c.rl.optim.update(dict(lr=rl_lr, warmup_steps=10))
  c.eval.update(dict(tasks="loss,chat_loss,identity,arithmetic,spelling,gsm8k,mc:arc_easy", num_examples=200,
                     max_new_tokens=512, batch_size=64))
