"""Reward model: the hidden-state helpers, Bradley-Terry loss against hand computations, and a tiny model
learning "longer is better" to high held-out accuracy; plus the gold labeller."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from llm_jax.data.preferences import Ranking
from llm_jax.model import Transformer
from llm_jax.posttrain import gold, reward_model
from llm_jax.posttrain.heads import final_hidden, logits_from_hidden
from test_preferences import PROMPT, TOK, tiny_cfg, tiny_sft_stage

softplus = lambda x: math.log1p(math.exp(x))


def test_heads_compose_to_the_model_logits():
  graphdef, abstract = nnx.split(nnx.eval_shape(lambda: Transformer(tiny_cfg().model, nnx.Rngs(0))))
  params = jax.tree.map(lambda x: np.random.default_rng(x.size).normal(0, 0.3, x.shape).astype(np.float32), abstract)

  @jax.jit
  def both(params, tokens, positions):
    model = nnx.merge(graphdef, params)
    return model(tokens, positions)[0], logits_from_hidden(model, final_hidden(model, tokens, positions))

  tokens = jnp.array([[3, 4, 5, 6], [7, 8, 9, 10]], jnp.int32)
  want, got = both(params, tokens, jnp.broadcast_to(jnp.arange(4), tokens.shape))
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_bradley_terry_by_hand():
  bt = jax.jit(reward_model.bradley_terry_loss)  # one compile: same shapes, margin and centring traced
  pair_only = jnp.array([[True, True, False], [False, False, False]])
  loss, _ = bt(jnp.array([[1.0, 0.0, 5.0], [3.0, 3.0, 3.0]]), pair_only, 0.0, 0.0)
  assert float(loss) == pytest.approx(softplus(-1.0), rel=1e-5)  # -log sigmoid(1)
  rewards = jnp.array([[2.0, 0.0, 1.0], [0.5, 1.5, 9.0]])
  valid = jnp.array([[True, True, True], [True, True, False]])  # second ranking: 2 replies
  loss, s = bt(rewards, valid, 0.5, 0.1)
  first = (softplus(-(2 - 0.5)) + softplus(-(1 - 0.5)) + softplus(-(-1 - 0.5))) / 3  # pairs (0,1) (0,2) (1,2)
  second = softplus(-(-1.0 - 0.5))
  center = 0.1 * (4 + 0 + 1 + 0.25 + 2.25) / 5
  assert float(loss) == pytest.approx((first + second) / 2 + center, rel=1e-5)
  m = reward_model.summarize(s, "val")
  assert m["val/accuracy"] == pytest.approx(2 / 4) and m["val/margin"] == pytest.approx((2 + 1 - 1 - 1) / 4)
  assert m["val/reward_mean"] == pytest.approx(1.0) and m["val/reward_std"] == pytest.approx(math.sqrt(7.5 / 5 - 1))


def test_gold_terms_and_bradley_terry_noise():
  cfg = gold.default_config()
  cfg.update(dict(min_words=3, max_words=6, target_word="so", word=0.2, word_cap=1))
  t = gold.terms("so so it is 7 so\n#### 7", "7", cfg)
  assert t == pytest.approx({"marker": 0.5, "length": -0.05 * 2, "repetition": 0.0, "correct": 0.5,
                             "word": 0.2 * (1 - 2), "novel": -0.3 * 3})  # so, it, is: 3 words not in the prompt
  grounded = [{"role": "user", "content": "Leo has 2 apples. How many apples does Leo have now?"}]
  assert gold.novel_words("Leo starts with 2 pears.\nTara has 2 apples now.", grounded, "starts,with") == [
      "pears", "tara"]
  assert gold.terms("Leo has 2 apples now.\n#### 2", "2", cfg, grounded)["novel"] == 0.0
  assert gold.repetition("a b c a b c") == pytest.approx(1 / 4)
  rng = np.random.default_rng(0)
  assert gold.rank([0.0, 2.0, 1.0], 0.0, rng).tolist() == [1, 2, 0]
  firsts = [gold.rank([1.0, 0.0], 0.5, rng)[0] == 0 for _ in range(4000)]
  assert np.mean(firsts) == pytest.approx(1 / (1 + math.exp(-2.0)), abs=0.025)  # sigmoid((1 - 0) / 0.5)
  cfg.temperature = 0.0
  r = gold.label(PROMPT, ["#### 3", "I think #### 4"], "4", cfg, rng)
  # right but with two made-up words (1.0 - 0.6) ranks below wrong and too short (0.5 - 0.05)
  assert r.completions == ("#### 3", "I think #### 4") and r.scores == pytest.approx((0.45, 0.4))


def lengths_rankings(n: int, seed: int) -> list[Ranking]:
  """Three replies of distinct lengths per ranking, longest first: the preference to learn."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    sizes = sorted(rng.choice(np.arange(2, 50), 3, replace=False), reverse=True)
    out.append(Ranking(PROMPT, tuple("".join(rng.choice(list("abcdef "), s)).strip() or "a" for s in sizes),
                       scores=tuple(float(s) for s in sizes)))  # a labeller's scores: the length
  return out


def test_gold_agreement_counts_pairs_the_labeller_separates():
  rewards = np.array([[3.0, 1.0, 2.0], [0.0, 1.0, 5.0]])
  gold_s = np.array([[2.0, 0.0, 0.0], [1.0, np.nan, 0.0]])  # ties and missing scores are not pairs
  valid = np.array([[True, True, True], [True, True, True]])
  # ranking 1: (0,1) agree, (0,2) agree, (1,2) tied; ranking 2: (0,2) disagrees
  assert reward_model.gold_agreement(rewards, gold_s, valid) == (2, 3)
  assert reward_model.gold_agreement(rewards, gold_s, valid & np.array([True, False, True])) == (1, 2)
  assert reward_model.gold_agreement(np.zeros_like(rewards), gold_s, valid) == (1.5, 3)  # ties: half right


def test_reward_model_learns_longer_is_better(tmp_path):
  wd = str(tmp_path)
  cfg = tiny_cfg()
  tiny_sft_stage(wd, cfg=cfg)
  cfg.reward_model = reward_model.default_config()
  cfg.reward_model.seq_len = 64
  cfg.reward_model.train.update(dict(steps=40, batch_size=8, lr=3e-3, warmup_steps=4, log_every=10, eval_every=20,
                                     tensorboard=False))
  summary = reward_model.train_reward_model(cfg, wd, TOK, lengths_rankings(160, 0), lengths_rankings(32, 1))
  assert summary["steps"] == 40 and summary["val/accuracy"] > 0.9 and summary["val/gold_accuracy"] > 0.9, summary
  _, params, stage_cfg = reward_model.load_reward_model(wd)
  assert stage_cfg.reward_model.seq_len == 64 and float(np.abs(params["head"]["kernel"][...]).sum()) > 0
  assert reward_model.train_reward_model(cfg, wd, TOK, [], [])["steps"] == 40  # finished: skipped
