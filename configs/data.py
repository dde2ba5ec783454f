"""Data only: read a source, clean it (FineWeb recipe), train the tokenizer, write token shards.

python -m llm_jax.main --config=configs/data.py --workdir=runs/data \\
    --config.data.source=html:/path/to/crawl --config.tokenizer.vocab_size=32768
A pretraining config then points at the same workdir (or its data/ and tokenizer/ folders).
"""

from llm_jax.config import base_config


def get_config(preset: str = ""):
  del preset
  c = base_config()
  c.experiment = "experiments/data.py"
  c.data.source = "builtin"
  c.tokenizer.vocab_size = 32768
  return c
