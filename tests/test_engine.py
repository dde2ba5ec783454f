"""The KV-cache engine: batched prompts of different lengths, sampling filters, stop tokens, limits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import tiny_config
from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.sampling import filter_logits, sample
from llm_jax.model import Transformer

CFG = tiny_config().model


@pytest.fixture(scope="module")
def engine():
  graphdef, params = nnx.split(Transformer(CFG, nnx.Rngs(3)))
  return Engine(graphdef, params, CFG.max_seq_len), graphdef, params


def greedy_by_full_forward(graphdef, params, prompt, n):
  """Reference: recompute the whole sequence each step, no cache."""
  model = nnx.merge(graphdef, params)
  seq = list(prompt)
  for _ in range(n):
    logits, _ = model(jnp.array([seq]), jnp.arange(len(seq))[None])
    seq.append(int(jnp.argmax(logits[0, -1])))
  return seq[len(prompt):]


def test_batched_greedy_matches_full_forward_per_prompt(engine):
  eng, graphdef, params = engine
  prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10], [11]]
  out = eng.generate(prompts, SamplingParams(max_new_tokens=6, temperature=0.0))
  for prompt, completion in zip(prompts, out):
    assert completion == greedy_by_full_forward(graphdef, params, prompt, 6)


def test_stop_tokens_end_rows_independently(engine):
  eng, _, _ = engine
  prompts = [[1, 2, 3], [4, 5]]
  free = eng.generate(prompts, SamplingParams(max_new_tokens=8, temperature=0.0))
  stop = free[0][2]
  out = eng.generate(prompts, SamplingParams(max_new_tokens=8, temperature=0.0, stop_ids=(stop,)))
  assert out[0] == free[0][:free[0].index(stop)]
  expected_1 = free[1][:free[1].index(stop)] if stop in free[1] else free[1]
  assert out[1] == expected_1


def test_sampling_is_seeded(engine):
  eng, _, _ = engine
  p = SamplingParams(max_new_tokens=8, temperature=1.0, seed=5)
  a = eng.generate([[1, 2]] * 3, p)
  assert a == eng.generate([[1, 2]] * 3, p)
  assert a != eng.generate([[1, 2]] * 3, SamplingParams(max_new_tokens=8, temperature=1.0, seed=6))


def test_prompt_longer_than_context_is_a_clear_error(engine):
  eng, _, _ = engine
  with pytest.raises(ValueError, match="does not fit the model's context"):
    eng.generate([list(range(CFG.max_seq_len))], SamplingParams(max_new_tokens=4))


def test_top_k_and_top_p_filters():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]] * 3))
  out = filter_logits(logits, jnp.array([2, 0, 0]), jnp.array([1.0, 0.7, 0.81]))
  kept = np.isfinite(np.asarray(out))
  assert kept[0].tolist() == [True, True, False, False]  # top-2
  assert kept[1].tolist() == [True, True, False, False]  # 0.5 + 0.3 >= 0.7
  assert kept[2].tolist() == [True, True, True, False]  # 0.8 < 0.81 needs the third
  draws = jax.vmap(lambda k: sample(k, logits[:1], jnp.array([1.0]), jnp.array([2]), jnp.array([1.0])))(
      jax.random.split(jax.random.PRNGKey(0), 400))
  assert set(np.unique(draws).tolist()) == {0, 1}
  greedy = sample(jax.random.PRNGKey(0), logits[:1], jnp.array([0.0]), jnp.array([0]), jnp.array([1.0]))
  assert int(greedy[0]) == 0
