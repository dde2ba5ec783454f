"""Inference: sampling rules, the KV-cache engine, loading trained or imported models."""
