"""Optimizer pieces: decay mask, schedules, Muon wiring."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import tiny_config
from llm_jax.model import Transformer
from llm_jax.train import optim


def params(**model):
  cfg = tiny_config().model
  cfg.update(model)
  return nnx.split(Transformer(cfg, nnx.Rngs(0)))[1]


def test_decay_mask_spares_embeddings_norms_and_biases():
  p = params(use_bias=True, tie_embeddings=False)
  cfg = optim.default_config()
  flat = {"/".join(optim._path_names(k)): bool(v) for k, v in jax.tree_util.tree_flatten_with_path(optim.decay_mask(cfg, p))[0]}
  assert flat["blocks/0/attn/wq"] and flat["blocks/1/mlp/w_out"]
  assert not flat["embed"] and not flat["head"] and not flat["blocks/0/attn/bq"]
  assert not flat["blocks/0/attn_norm/scale"] and not flat["final_norm/scale"]
  cfg.decay_embeddings = True
  assert bool(optim.decay_mask(cfg, p)["embed"].get_value())


@pytest.mark.parametrize("kind", ["cosine", "linear", "wsd", "constant"])
def test_schedules_warm_up_then_decay(kind):
  cfg = optim.default_config()
  cfg.update(dict(schedule=kind, warmup_steps=10, min_lr_ratio=0.1, decay_fraction=0.2))
  lr = optim.schedule(cfg, 100, 1.0)
  values = np.array([float(lr(i)) for i in range(101)])
  assert values[0] < 0.2 and abs(values[10] - 1.0) < 1e-6
  assert np.all(np.diff(values[:11]) > 0)
  if kind == "constant":
    assert abs(values[-1] - 1.0) < 1e-6
  else:
    assert abs(values[-1] - 0.1) < 1e-3 and np.all(np.diff(values[10:]) <= 1e-7)
  if kind == "wsd":
    assert abs(values[80] - 1.0) < 1e-6 and values[90] < 1.0  # stable, then anneal over the last 20%


def test_weight_decay_pulls_matrices_not_vectors():
  p = params(use_bias=True)
  cfg = optim.default_config()
  cfg.update(dict(lr=0.1, weight_decay=0.5, warmup_steps=0, grad_clip=0.0))
  opt = optim.make_optimizer(cfg, 10)
  zero = jax.tree.map(jnp.zeros_like, p)
  updates, _ = opt.update(zero, opt.init(p), p)
  assert float(jnp.abs(updates["blocks"][0]["mlp"]["w_in"][...]).sum()) > 0  # decayed
  assert float(jnp.abs(updates["embed"][...]).sum()) == 0
  assert float(jnp.abs(updates["blocks"][0]["attn_norm"]["scale"][...]).sum()) == 0


def test_muon_trains_all_parameters():
  p = params()
  cfg = optim.default_config()
  cfg.update(dict(optimizer="muon", warmup_steps=0, weight_decay=0.0, grad_clip=0.0))
  opt = optim.make_optimizer(cfg, 10)
  leaves, treedef = jax.tree.flatten(p)
  keys = jax.random.split(jax.random.PRNGKey(0), len(leaves))
  grads = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])
  updates, _ = opt.update(grads, opt.init(p), p)
  assert all(float(jnp.abs(u).sum()) > 0 for u in jax.tree.leaves(updates))
  wq = updates["blocks"][0]["attn"]["wq"][...]
  # Muon orthogonalises the [embed, heads*head_dim] matrix: singular values roughly equal
  s = np.linalg.svd(np.asarray(wq).reshape(wq.shape[0], -1), compute_uv=False)
  assert s.max() / s.min() < 3  # a random gradient's spectrum is far wider
