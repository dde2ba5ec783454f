"""The decoder-only transformer (GPT-2 and Llama switches) and its parts."""

from llm_jax.model.config import default_config, validate
from llm_jax.model.transformer import Transformer
