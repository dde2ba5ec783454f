"""Data: text sources, cleaning, token shards and the input pipeline (import the submodules)."""
