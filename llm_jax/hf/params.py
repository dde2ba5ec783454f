"""Tensor mapping between Hugging Face checkpoints and our params, and placing tensors in their shards.

A family file (gpt2.py, llama.py) lists `Entry`s: one HF tensor <-> one or more of our parameters
(GPT-2's fused c_attn holds our wq, wk and wv), with the reshapes both ways.
"""

import dataclasses
import math
from typing import Callable

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils


@dataclasses.dataclass(frozen=True)
class Entry:
  hf: str  # HF tensor name, e.g. "model.layers.0.self_attn.q_proj.weight"
  hf_shape: tuple[int, ...]
  ours: tuple[str, ...]  # our param paths, e.g. ("blocks.0.attn.wq",)
  split: Callable[[np.ndarray], tuple[np.ndarray, ...]]  # HF tensor -> our tensors
  join: Callable[..., np.ndarray]  # our tensors -> HF tensor


def same(hf: str, ours: str, shape) -> Entry:
  """A tensor stored the same way, up to a reshape (embeddings, norms, biases)."""
  shape = tuple(shape)
  return Entry(hf, shape, (ours,), lambda w: (w,), lambda w: w)


def reshaped(hf: str, ours: str, hf_shape, our_shape) -> Entry:
  hf_shape, our_shape = tuple(hf_shape), tuple(our_shape)
  return Entry(hf, hf_shape, (ours,), lambda w: (w.reshape(our_shape),), lambda w: w.reshape(hf_shape))


def linear(hf: str, ours: str, in_shape, out_shape) -> Entry:
  """torch.nn.Linear weight [out, in] <-> ours [*in_shape, *out_shape] (e.g. q_proj <-> wq [E, H, D])."""
  n_in, n_out = math.prod(in_shape), math.prod(out_shape)
  ours_shape = (*in_shape, *out_shape)
  return Entry(hf, (n_out, n_in), (ours,), lambda w: (w.T.reshape(ours_shape),),
               lambda w: w.reshape(n_in, n_out).T)


def conv1d(hf: str, ours: str, in_shape, out_shape) -> Entry:
  """GPT-2's Conv1D weight [in, out] <-> ours [*in_shape, *out_shape]."""
  n_in, n_out = math.prod(in_shape), math.prod(out_shape)
  return reshaped(hf, ours, (n_in, n_out), (*in_shape, *out_shape))


def path_of(key_path) -> str:
  return ".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in key_path)


def _is_var(x) -> bool:
  return isinstance(x, nnx.Variable)


def flat(state) -> dict:
  """{"blocks.0.attn.wq": Variable, ...} of an nnx.State."""
  leaves = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_var)[0]
  return {path_of(p): leaf for p, leaf in leaves}


def _place(array: np.ndarray, sharding) -> jax.Array:
  """One host array into its shards; each device copies only its own slice (works across hosts)."""
  return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def load_params(entries: list[Entry], reader, abstract, shardings, ignore: Callable[[str], bool]):
  """Params shaped like `abstract`, read entry by entry from `reader`, each placed on its sharding.

  Checks every HF tensor's shape before reading it, and that no tensor of the folder goes unused
  (except those `ignore` accepts: tied heads, old buffers).
  """
  wanted, placing = flat(abstract), flat(shardings)
  available = reader.names()
  loaded = {}
  for e in sorted(entries, key=lambda e: (reader.file_of.get(e.hf, ""), e.hf)):
    if e.hf not in available:
      raise ValueError(f"tensor {e.hf!r} missing from {reader.directory!r} (expected shape {e.hf_shape})")
    found = reader.shape(e.hf)
    if found != e.hf_shape:
      raise ValueError(f"tensor {e.hf!r}: expected shape {e.hf_shape}, found {found}; does config.json "
                       "match the weights?")
    for path, array in zip(e.ours, e.split(reader.read(e.hf))):
      target = wanted[path]
      array = np.ascontiguousarray(array, dtype=target.get_value().dtype)
      assert array.shape == target.get_value().shape, (path, array.shape, target.get_value().shape)
      loaded[path] = _place(array, placing[path].get_value())
  missing = sorted(set(wanted) - set(loaded))
  if missing:
    raise ValueError(f"the mapping leaves parameters unset: {missing[:5]}")
  used = {e.hf for e in entries}
  extra = sorted(n for n in available - used if not ignore(n))
  if extra:
    raise ValueError(f"{len(extra)} tensors in {reader.directory!r} have no place in the model, e.g. "
                     f"{extra[:3]}; config.json describes another model than the weights")
  return jax.tree_util.tree_map_with_path(
      lambda p, leaf: leaf.replace(loaded[path_of(p)]), abstract, is_leaf=_is_var)


def to_host(x: jax.Array) -> np.ndarray:
  """The whole array on this host (gathered from other hosts when sharded across them)."""
  if x.is_fully_addressable:
    return np.asarray(jax.device_get(x))
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def export_tensors(entries: list[Entry], params, dtype=np.float32):
  """Yields (HF name, host array) one tensor at a time."""
  ours = flat(params)
  for e in entries:
    arrays = [to_host(ours[path].get_value()) for path in e.ours]
    hf = np.asarray(e.join(*arrays)).astype(dtype)
    assert hf.shape == e.hf_shape, (e.hf, hf.shape, e.hf_shape)
    yield e.hf, hf


def match_prefix(entries: list[Entry], available: set[str], prefix: str) -> list[Entry]:
  """Entries renamed to drop `prefix` where the folder stores names without it (e.g. GPT-2 on the hub
  has "h.0.attn.c_attn.weight", save_pretrained writes "transformer.h.0.attn.c_attn.weight")."""
  out = []
  for e in entries:
    short = e.hf.removeprefix(prefix)
    out.append(dataclasses.replace(e, hf=short) if e.hf not in available and short in available else e)
  return out
