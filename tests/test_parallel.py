"""Scale-out switches on one device: activation specs from the rules, remat policies and layer scanning
give the same loss and gradients, the splash kernel refuses CPU, the memory estimate and its fit check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AbstractMesh, PartitionSpec as P

from conftest import tiny_config
from llm_jax import memory, parallel
from llm_jax.model import Transformer
from llm_jax.model.attention import attend
from llm_jax.model.scan import stack_params, unstack_params
from llm_jax.train import optim
from llm_jax.train import state as state_lib
from llm_jax.train.step import loss_sums

RULES = parallel.rules_dict(parallel.default_config())


def test_activation_specs_follow_the_rules_without_reusing_an_axis():
  mesh = AbstractMesh((2, 2, 2), parallel.MESH_AXES)
  spec = lambda names, shape: parallel.activation_spec(names, shape, mesh, RULES)
  # embed -> fsdp is dropped for activations: the batch already takes fsdp
  assert spec(("batch", "length", "embed"), (8, 16, 32)) == P(("data", "fsdp"), None, None)
  assert spec(("batch", "length", "heads", "head_dim"), (8, 16, 4, 8)) == P(("data", "fsdp"), None, "tensor", None)
  assert spec(("batch", "length", "mlp"), (8, 16, 64)) == P(("data", "fsdp"), None, "tensor")
  assert spec(("batch", "length", "vocab"), (8, 16, 320)) == P(("data", "fsdp"), None, "tensor")
  # a dimension the mesh axes do not divide stays whole (3 heads on tensor=2; batch 1 when decoding)
  assert spec(("batch", "length", "kv_heads", "head_dim"), (1, 16, 3, 8)) == P(None, None, None, None)


def test_constrain_is_the_identity_without_a_mesh_and_runs_with_one():
  x = jnp.arange(12.0).reshape(2, 3, 2)
  assert parallel.constrain(x, ("batch", "length", "embed")) is x
  mesh = parallel.make_mesh(shape=(1, 1, 1))
  fn = jax.jit(parallel.with_activation_sharding(lambda y: parallel.constrain(y * 2, ("batch", "length", "embed")),
                                                 mesh, RULES))
  np.testing.assert_array_equal(fn(x), x * 2)
  with pytest.raises(ValueError, match="do not match"):
    with parallel.activation_sharding(mesh, RULES):
      parallel.constrain(x, ("batch",))


def _batch(cfg, B=2, T=16):
  tokens = jax.random.randint(jax.random.PRNGKey(1), (B, T + 1), 0, cfg.vocab_size)
  return {"tokens": tokens[:, :-1], "targets": tokens[:, 1:], "positions": jnp.broadcast_to(jnp.arange(T), (B, T)),
          "segment_ids": jnp.ones((B, T), jnp.int32).at[:, T // 2:].set(2), "loss_mask": jnp.ones((B, T))}


def _loss_and_grads(cfg, params, batch):
  graphdef, _ = state_lib.model_graphdef_and_shapes(cfg)
  fn = jax.jit(jax.value_and_grad(lambda p: loss_sums(graphdef, p, batch, 0.0)[0]))
  return fn(params)


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_remat_policies_and_scan_layers_give_the_same_loss_and_gradients():
  cfg = tiny_config().model
  params = nnx.split(Transformer(cfg, nnx.Rngs(0)))[1]
  batch = _batch(cfg)
  loss, grads = _loss_and_grads(cfg, params, batch)
  for remat in ("full", "save_dots"):
    other = cfg.copy_and_resolve_references()
    other.remat = remat
    loss_r, grads_r = _loss_and_grads(other, params, batch)
    np.testing.assert_allclose(loss_r, loss, rtol=1e-6)
    for a, b in zip(_leaves(grads_r), _leaves(grads)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  scan = cfg.copy_and_resolve_references()
  scan.update(dict(scan_layers=True, remat="full"))
  _, template = state_lib.model_graphdef_and_shapes(scan)
  stacked = stack_params(params, template)
  loss_s, grads_s = _loss_and_grads(scan, stacked, batch)
  np.testing.assert_allclose(loss_s, loss, rtol=1e-6)
  for a, b in zip(_leaves(unstack_params(grads_s)), _leaves(grads)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_scan_layers_names_layers_first_and_decodes_with_a_stacked_cache():
  cfg = tiny_config().model
  cfg.scan_layers = True
  model = Transformer(cfg, nnx.Rngs(3))
  for path, var in nnx.to_flat_state(nnx.state(model.blocks, nnx.Param)):
    names = var.get_metadata()["out_sharding"]
    assert names[0] == "layers" and var.value.shape[0] == cfg.num_layers and len(names) == var.value.ndim, path
  tokens = jax.random.randint(jax.random.PRNGKey(0), (2, 10), 0, cfg.vocab_size)
  positions = jnp.broadcast_to(jnp.arange(10), (2, 10))
  full, _ = model(tokens, positions)
  cache = model.init_cache(2, 16)
  assert cache["k"].shape[0] == cfg.num_layers
  steps, cache = model(tokens[:, :6], positions[:, :6], cache=cache)
  outs = [steps]
  for t in range(6, 10):
    logits, cache = model(tokens[:, t:t + 1], positions[:, t:t + 1], cache=cache)
    outs.append(logits)
  np.testing.assert_allclose(jnp.concatenate(outs, 1), full, atol=1e-5)


def test_muon_treats_the_layers_axis_as_a_batch_axis():
  cfg = tiny_config().model
  cfg.scan_layers = True
  _, abstract = state_lib.model_graphdef_and_shapes(cfg)
  dims = optim._muon_dims(nnx.to_pure_dict(abstract))
  assert dims["blocks"]["attn"]["wq"].reduction_axis == (1,) and dims["blocks"]["attn"]["wq"].output_axis == (2, 3)
  assert dims["blocks"]["mlp"]["w_out"].reduction_axis == (1,) and dims["blocks"]["mlp"]["w_out"].output_axis == (2,)


def test_splash_attention_is_a_clear_error_off_tpu():
  q = jnp.zeros((1, 8, 2, 4))
  with pytest.raises(ValueError, match="splash.*TPU"):
    attend(q, q, q, None, "splash")


def test_memory_estimate_counts_sharded_state_and_refuses_what_cannot_fit(tmp_path):
  cfg = tiny_config()
  mesh = parallel.make_mesh(shape=(1, 1, 1))
  _, abstract = state_lib.model_graphdef_and_shapes(cfg.model)
  optimizer = optim.make_optimizer(cfg.train, cfg.train.steps)
  abstract_state, shardings = state_lib.state_shapes_and_shardings(abstract, optimizer, mesh, RULES)
  est = memory.estimate(cfg, abstract_state, shardings, mesh)
  n_params = sum(x.size for x in jax.tree.leaves(abstract))
  assert est["params"] == 4 * n_params and est["grads"] == est["params"]
  assert 2 * est["params"] <= est["opt_state"] < 2 * est["params"] + 1024  # AdamW: mu and nu
  assert 0 < est["activations"] and est["total"] == sum(est[k] for k in ("params", "opt_state", "grads", "activations"))
  full = cfg.model.copy_and_resolve_references()
  full.remat = "full"
  assert memory.activation_bytes(full, 4, 32, 1) < memory.activation_bytes(cfg.model, 4, 32, 1)
  assert "memory per device" in memory.format_estimate(est, None)
  assert memory.device_limit(cfg.train) is None  # CPU, no configured limit: no check
  cfg.train.memory_limit_gb = 1e-6
  with pytest.raises(ValueError, match="exceeds the .* GiB available"):
    memory.check_fits(est, memory.device_limit(cfg.train))
  from llm_jax.train import loop  # the loop refuses before compiling or writing anything
  with pytest.raises(ValueError, match="per device exceeds"):
    loop.train(cfg, str(tmp_path), "base", None, None, np.ones(320))
  assert not (tmp_path / "checkpoints").exists()


def test_single_process_needs_no_distributed_setup():
  parallel.maybe_initialize_distributed(parallel.default_config())  # num_processes=0: nothing to do
  assert jax.process_count() == 1
