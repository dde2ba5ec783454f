"""Device mesh from config, logical-axis rules, sharded placement, multi-host batch assembly.

Parallelism is a config change: parameters carry logical axis names (`embed`, `mlp`, `heads`, ...);
`mesh.rules` maps each to mesh axes (`data`, `fsdp`, `tensor`) or to None (replicated).
"""

import math

import jax
import ml_collections
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.data = -1  # data-parallel replicas; -1 takes the devices the other axes leave
  c.fsdp = 1  # parameter/optimizer-state sharding (ZeRO-3 style)
  c.tensor = 1  # tensor (Megatron) parallelism over heads and MLP width
  # logical axis -> mesh axes ("+"-joined) or "" for replicated. Override e.g. --config.mesh.rules.vocab=""
  c.rules = ml_collections.ConfigDict(dict(
      batch="data+fsdp", length="", embed="fsdp", mlp="tensor", heads="tensor", kv_heads="tensor",
      head_dim="", vocab="tensor", layers=""))
  # multi-host: 0 = single process, or automatic on TPU / Slurm / MPI when num_processes is -1
  c.num_processes = 0
  c.coordinator_address = ""  # "host:port" for explicit multi-process launches
  c.process_id = -1
  return c


def maybe_initialize_distributed(cfg) -> None:
  """jax.distributed.initialize() when more than one process is configured (before any device use)."""
  if cfg.num_processes == 0 or jax.distributed.is_initialized():
    return
  kwargs = {}
  if cfg.coordinator_address:
    kwargs = dict(coordinator_address=cfg.coordinator_address, num_processes=cfg.num_processes,
                  process_id=cfg.process_id)
  jax.distributed.initialize(**kwargs)


def mesh_shape(cfg, num_devices: int) -> tuple[int, int, int]:
  sizes = [cfg[a] for a in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError("at most one of mesh.data, mesh.fsdp, mesh.tensor may be -1")
  fixed = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if num_devices % fixed:
      raise ValueError(f"{num_devices} devices do not divide by mesh.fsdp*mesh.tensor={fixed}; change the mesh")
    sizes[sizes.index(-1)] = num_devices // fixed
  if math.prod(sizes) != num_devices:
    raise ValueError(f"mesh data*fsdp*tensor = {math.prod(sizes)} but there are {num_devices} devices; "
                     "set one of mesh.data/fsdp/tensor to -1 or make the product match")
  return tuple(sizes)


def make_mesh(cfg=None, shape: tuple[int, int, int] | None = None) -> jax.sharding.Mesh:
  """Mesh over all devices with axes (data, fsdp, tensor); Auto axes, so XLA propagates shardings."""
  shape = shape or mesh_shape(cfg, jax.device_count())
  return jax.make_mesh(shape, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def spec_for(names, rules) -> P:
  """PartitionSpec for a tuple of logical axis names under `rules`."""
  if names is None:
    return P()
  out = []
  for name in names:
    rule = rules.get(name, "") if name else ""
    axes = tuple(a for a in rule.split("+") if a)
    out.append(None if not axes else axes[0] if len(axes) == 1 else axes)
  return P(*out)


def _fit(spec: P, shape, mesh) -> P:
  """Drop mesh axes that do not divide a dimension (e.g. 2 kv heads on tensor=4): replicate instead."""
  out = []
  for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = (axes,) if isinstance(axes, str) else tuple(axes or ())
    size = math.prod(mesh.shape[a] for a in names)
    out.append(axes if names and dim % size == 0 else None)
  return P(*out)


def tree_shardings(tree, mesh, rules):
  """NamedSharding for every leaf of a state tree (params, optimizer state, scalars)."""
  def one(leaf):
    if isinstance(leaf, nnx.Variable):
      names = leaf.get_metadata().get("out_sharding")
      spec = _fit(spec_for(names, rules), leaf.shape, mesh)
      return leaf.replace(NamedSharding(mesh, spec))
    return NamedSharding(mesh, P())
  return jax.tree.map(one, tree, is_leaf=lambda x: isinstance(x, nnx.Variable))


def batch_sharding(mesh, rules, ndim: int = 2, leading: int = 0) -> NamedSharding:
  """Shard the batch axis (after `leading` unsharded axes, e.g. micro-steps) over the batch mesh axes."""
  spec = spec_for(("batch",), rules)
  return NamedSharding(mesh, P(*([None] * leading), spec[0], *([None] * (ndim - leading - 1))))


def batch_divisor(mesh, rules) -> int:
  spec = spec_for(("batch",), rules)[0]
  names = (spec,) if isinstance(spec, str) else tuple(spec or ())
  return math.prod(mesh.shape[a] for a in names)


def global_batch(local_batch: dict, sharding: NamedSharding) -> dict:
  """Assemble per-host numpy arrays into global jax Arrays (each host passes only its own rows)."""
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local_batch.items()}


def rules_dict(cfg) -> dict:
  return dict(cfg.rules)
