"""The train step: accumulation equals the big batch, the loss mask is respected, bad steps are not applied."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from conftest import tiny_config
from llm_jax.model import Transformer
from llm_jax.train.step import loss_sums, make_train_step

CFG = tiny_config()


def setup(lr=1e-2):
  graphdef, params = nnx.split(Transformer(CFG.model, nnx.Rngs(0)))
  opt = optax.sgd(lr)
  state = {"params": params, "opt_state": opt.init(params), "step": jnp.zeros((), jnp.int32),
           "rng": jnp.zeros((2,), jnp.uint32)}
  return graphdef, opt, state


def batch(B=4, T=16, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, CFG.model.vocab_size, (B, T + 1))
  mask = (rng.random((B, T)) > 0.3).astype(np.float32)
  return {"tokens": tokens[:, :-1].astype(np.int32), "targets": tokens[:, 1:].astype(np.int32),
          "positions": np.broadcast_to(np.arange(T), (B, T)).astype(np.int32),
          "segment_ids": np.ones((B, T), np.int32), "loss_mask": mask}


def test_gradient_accumulation_equals_one_big_batch():
  graphdef, opt, state = setup()
  step = jax.jit(make_train_step(graphdef, opt))
  b = batch()
  one = {k: v[None] for k, v in b.items()}  # 1 micro-step of 4
  four = {k: v.reshape(4, 1, *v.shape[1:]) for k, v in b.items()}  # 4 micro-steps of 1
  s1, m1 = step(state, one)
  s4, m4 = step(state, four)
  np.testing.assert_allclose(m1["train/loss"], m4["train/loss"], rtol=1e-6)
  np.testing.assert_allclose(m1["train/grad_norm"], m4["train/grad_norm"], rtol=1e-5)
  for a, c in zip(jax.tree.leaves(s1["params"]), jax.tree.leaves(s4["params"])):
    np.testing.assert_allclose(a, c, atol=1e-6)
  assert int(m1["train/tokens"]) == int(b["loss_mask"].sum())  # normalised by all target tokens


def test_loss_mask_excludes_targets():
  graphdef, _, state = setup()
  b = batch()
  loss = lambda bb: loss_sums(graphdef, state["params"], jax.tree.map(jnp.asarray, bb), 0.0)[1]
  ce, n = loss(b)
  changed = dict(b, targets=np.where(b["loss_mask"] > 0, b["targets"], (b["targets"] + 1) % 320))
  ce2, _ = loss(changed)
  assert float(ce) == float(ce2)  # masked targets do not count
  assert int(n) == int(b["loss_mask"].sum())
  # the mean over unmasked tokens equals the masked-sum / count
  ce_all, n_all = loss(dict(b, loss_mask=np.ones_like(b["loss_mask"])))
  assert int(n_all) == b["loss_mask"].size and float(ce_all) > float(ce)


def test_nonfinite_step_is_not_applied():
  graphdef, opt, state = setup()
  step = jax.jit(make_train_step(graphdef, opt))
  bad = jax.tree.map(lambda x: x, state)
  bad["params"]["embed"].set_value(bad["params"]["embed"][...].at[0, 0].set(jnp.nan))
  b = {k: v[None] for k, v in batch().items()}
  b["tokens"][0, 0, 0] = 0  # the NaN row is used
  new, metrics = step(bad, b)
  assert int(metrics["nonfinite"]) == 1
  for a, c in zip(jax.tree.leaves(new["params"]), jax.tree.leaves(bad["params"])):
    np.testing.assert_array_equal(a, c)
  good, metrics = step(state, b)
  assert int(metrics["nonfinite"]) == 0 and int(good["step"]) == 1
