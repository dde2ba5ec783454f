"""Device mesh from config, logical-axis rules, sharded placement, multi-host batch assembly.

Parallelism is a config change: parameters carry logical axis names (`embed`, `mlp`, `heads`, ...);
`mesh.rules` maps each to mesh axes (`data`, `fsdp`, `tensor`) or to None (replicated). Key activations
are constrained with the same names (`constrain`) while a step runs under `activation_sharding`.
"""

import contextlib
import contextvars
import functools
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
  # multi-host: 0 = single process; -1 = jax.distributed.initialize() detects the cluster (TPU pod slice,
  # Slurm, Open MPI); N > 0 = N processes, with coordinator_address and process_id given (or detected)
  c.num_processes = 0
  c.coordinator_address = ""  # "host:port" of process 0, for explicit multi-process launches
  c.process_id = -1  # this process's rank in [0, num_processes); -1 = detect
  return c


def maybe_initialize_distributed(cfg) -> None:
  """jax.distributed.initialize() when several processes are configured (before any device use).
  Fields left unset (-1 / "") are detected from the cluster environment by JAX."""
  if cfg.num_processes == 0 or jax.distributed.is_initialized():
    return
  kwargs = {}
  if cfg.coordinator_address:
    kwargs["coordinator_address"] = cfg.coordinator_address
  if cfg.num_processes > 0:
    kwargs["num_processes"] = cfg.num_processes
  if cfg.process_id >= 0:
    kwargs["process_id"] = cfg.process_id
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


def activation_spec(names, shape, mesh, rules) -> P:
  """PartitionSpec of an activation: like a parameter's, but a mesh axis used by an earlier dimension is
  not used again (e.g. `embed` -> fsdp is dropped when `batch` already takes fsdp)."""
  used, out = set(), []
  for dim, axes in zip(shape, spec_for(names, rules)):
    names_ = tuple(a for a in ((axes,) if isinstance(axes, str) else tuple(axes or ())) if a not in used)
    if not names_ or dim % math.prod(mesh.shape[a] for a in names_):
      out.append(None)
      continue
    used.update(names_)
    out.append(names_[0] if len(names_) == 1 else names_)
  return P(*out)


_ACTIVE = contextvars.ContextVar("llm_jax_activation_sharding", default=None)


@contextlib.contextmanager
def activation_sharding(mesh, rules):
  """Within this context (while tracing), `constrain` pins activations to the mesh by logical names."""
  token = _ACTIVE.set((mesh, dict(rules)))
  try:
    yield
  finally:
    _ACTIVE.reset(token)


def with_activation_sharding(fn, mesh, rules):
  """`fn` traced under `activation_sharding(mesh, rules)`, whoever calls (or jits) it."""
  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with activation_sharding(mesh, rules):
      return fn(*args, **kwargs)
  return wrapped


def active_mesh():
  """(mesh, rules) of the enclosing `activation_sharding`, or None."""
  return _ACTIVE.get()


def constrain(x: jax.Array, names: tuple[str | None, ...]) -> jax.Array:
  """with_sharding_constraint by logical axis names under the active mesh; the identity without one."""
  active = _ACTIVE.get()
  if active is None:
    return x
  mesh, rules = active
  if len(names) != x.ndim:
    raise ValueError(f"logical names {names} do not match an activation of shape {x.shape}")
  return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, activation_spec(names, x.shape, mesh, rules)))
