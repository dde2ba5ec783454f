"""Scale-out switches on one device: activation specs from the rules, remat policies and layer scanning
give the same loss and gradients, the splash kernel refuses CPU, the memory estimate and its fit check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AbstractMesh, PartitionSpec as P

from conftest import tiny_config
from parallel_runs import numpy_params
from llm_jax import memory, parallel
from llm_jax.model.attention import attend
from llm_jax.model.scan import stack_params, unstack_params
from llm_jax.train import optim
from llm_jax.train import state as state_lib
from llm_jax.train.step import loss_sums

RULES = parallel.rules_dict(parallel.default_config())
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


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
  tokens = np.random.default_rng(1).integers(0, cfg.vocab_size, (B, T + 1)).astype(np.int32)
  segments = np.ones((B, T), np.int32)
  segments[:, T // 2:] = 2
  return {"tokens": tokens[:, :-1], "targets": tokens[:, 1:], "positions": np.broadcast_to(np.arange(T), (B, T)),
          "segment_ids": segments, "loss_mask": np.ones((B, T), np.float32)}


def _params(cfg, seed=0):
  graphdef, abstract = state_lib.model_graphdef_and_shapes(cfg)
  return graphdef, numpy_params(abstract, seed=seed)


def _run(fn, *args):
  """fn(*args), jitted with cheaper LLVM code generation (the same HLO): compiles dominate these tests."""
  return jax.jit(fn).lower(*args).compile(FAST_COMPILE)(*args)


def _loss_and_grads(cfg, params, batch):
  graphdef, _ = state_lib.model_graphdef_and_shapes(cfg)
  return _run(jax.value_and_grad(lambda p: loss_sums(graphdef, p, batch, 0.0)[0]), params)


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_remat_policies_and_scan_layers_give_the_same_loss_and_gradients():
  cfg = tiny_config().model
  _, params = _params(cfg)
  batch = _batch(cfg)
  loss, grads = _loss_and_grads(cfg, params, batch)
  full = cfg.copy_and_resolve_references()
  full.remat = "full"
  loss_f, grads_f = _loss_and_grads(full, params, batch)
  scan = cfg.copy_and_resolve_references()  # stacked layers, each scanned layer saving only its matmuls
  scan.update(dict(scan_layers=True, remat="save_dots"))
  _, template = state_lib.model_graphdef_and_shapes(scan)
  loss_s, grads_s = _loss_and_grads(scan, stack_params(params, template), batch)
  for other_loss, other_grads in ((loss_f, grads_f), (loss_s, unstack_params(grads_s))):
    np.testing.assert_allclose(other_loss, loss, rtol=1e-6)
    for a, b in zip(_leaves(other_grads), _leaves(grads)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_scan_layers_names_layers_first_and_decodes_with_a_stacked_cache():
  cfg = tiny_config().model
  cfg.scan_layers = True
  graphdef, params = _params(cfg, seed=3)
  for path, var in nnx.to_flat_state(params["blocks"]):
    names = var.get_metadata()["out_sharding"]
    shape = var.get_value().shape
    assert names[0] == "layers" and shape[0] == cfg.num_layers and len(names) == len(shape), path
  forward = lambda p, t, pos, c: nnx.merge(graphdef, p)(t, pos, cache=c)
  tokens = _batch(cfg, 2, 8)["tokens"]
  positions = np.broadcast_to(np.arange(8), (2, 8))
  full, _ = _run(forward, params, tokens, positions, None)
  cache = nnx.merge(graphdef, params).init_cache(2, 8)
  assert cache["k"].shape[0] == cfg.num_layers
  chunk = jax.jit(forward).lower(params, tokens[:, :4], positions[:, :4], cache).compile(FAST_COMPILE)
  outs = []
  for t in (0, 4):  # two chunks of four tokens through the stacked cache
    logits, cache = chunk(params, tokens[:, t:t + 4], positions[:, t:t + 4], cache)
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


def test_hf_export_and_import_of_a_scan_layers_model(tmp_path):
  from llm_jax import hf
  cfg = tiny_config().model
  cfg.scan_layers = True
  graphdef, params = _params(cfg, seed=5)
  out = hf.save_hf(graphdef, params, cfg, None, str(tmp_path / "hf"))
  _, per_layer, per_layer_cfg, _ = hf.load_hf(out)
  assert not per_layer_cfg.get("scan_layers")
  for a, b in zip(_leaves(per_layer), _leaves(unstack_params(params))):
    np.testing.assert_array_equal(a, b)
  _, again, _, _ = hf.load_hf(out, overrides={"scan_layers": True})
  for a, b in zip(_leaves(again), _leaves(params)):
    np.testing.assert_array_equal(a, b)


def test_splash_wrapper_matches_the_reference_in_interpret_mode():
  """The Pallas kernel interpreted on CPU: layout, scaling, grouped heads and documents as on TPU."""
  from llm_jax.model.attention import causal_mask
  from llm_jax.model.splash import splash_attention
  B, T, H, K, D = 2, 128, 4, 2, 16
  rng = np.random.default_rng(0)
  q, k, v = (rng.normal(size=(B, T, n, D)).astype(np.float32) for n in (H, K, K))
  segments = np.ones((B, T), np.int32)
  segments[:, 50:] = 2
  reference = attend(q, k, v, jnp.broadcast_to(causal_mask(T, segments), (B, T, T)), "xla")
  out = _run(lambda *a: splash_attention(*a, interpret=True), q, k, v, segments)
  np.testing.assert_allclose(out, reference, atol=1e-5)


class _Device:
  platform, device_kind = "gpu", ""


def test_mfu_peak_per_device_kind():
  from llm_jax.train import flops
  for kind, peak in (("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H200", 989e12),
                     ("TPU v5 lite", 197e12), ("TPU v4", 275e12)):
    device = _Device()
    device.device_kind = kind
    assert flops.device_peak_flops(device) == peak, kind
