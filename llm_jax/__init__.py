"""llm_jax: the whole life of a language model in JAX/Flax."""

__version__ = "0.1.0"
