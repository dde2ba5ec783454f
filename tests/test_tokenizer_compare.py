"""compare_tokenizers: both tokenizers train and report sane numbers on tiny text."""

import random

from llm_jax.tokenizer.compare import compare_tokenizers


def test_compare_tiny():
  rng = random.Random(0)
  words = ["the", "cat", "sat", "on", "mat", "東京", "😀", "12", "\n", "running", "jumped"]
  texts = [" ".join(rng.choice(words) for _ in range(30)) for _ in range(300)]
  result = compare_tokenizers(texts[:250], texts[250:], vocab_size=420)
  for name in ("ours", "hf"):
    r = result[name]
    assert r["round_trip_ok"] and r["vocab_size"] <= 420
    assert 1.5 < r["bytes_per_token"] < 20 and r["train_mb_per_s"] > 0 and r["encode_mb_per_s"] > 0
  assert 0.5 < result["bytes_per_token_ratio"] < 2
