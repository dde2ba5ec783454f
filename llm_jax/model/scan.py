"""Layer stacking (`model.scan_layers=True`): one Block whose parameters carry a leading `layers` axis,
run with `jax.lax.scan` (one compiled block instead of num_layers copies), and conversions between the
stacked and the per-layer (`blocks.0`, `blocks.1`, ...) parameter layouts.
"""

import jax
import jax.numpy as jnp
from flax import nnx


def stacked_blocks(make_block, num_layers: int, rngs: nnx.Rngs):
  """`make_block(rngs)` vmapped over `num_layers` split keys; params get logical name `layers` first."""
  @nnx.split_rngs(splits=num_layers)
  @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
  def make(rngs):
    return make_block(rngs)
  return make(rngs)


def scan_blocks(blocks, x_BxTxE, positions_BxT, segment_ids_BxT, cache, remat_policy=None):
  """Run the stacked `blocks` over the layers axis. `cache`: None or {"k", "v"} of [layers, B, S, K, D];
  returns (x, cache). `remat_policy`: a jax.checkpoint policy applied per layer, or None."""
  graphdef, stacked = nnx.split(blocks)

  def body(x_BxTxE, layer):
    params, layer_cache = layer
    return nnx.merge(graphdef, params)(x_BxTxE, positions_BxT, segment_ids_BxT, layer_cache)

  if remat_policy is not None:
    body = jax.checkpoint(body, policy=remat_policy, prevent_cse=False)
  return jax.lax.scan(body, x_BxTxE, (stacked, cache))


def _is_var(x) -> bool:
  return isinstance(x, nnx.Variable)


def unstack_params(params):
  """Scan layout -> per-layer layout (`blocks.<i>....`), e.g. to export tensor by tensor."""
  blocks = params["blocks"]
  num_layers = jax.tree.leaves(blocks)[0].shape[0]

  def layer(i):
    return jax.tree.map(lambda v: v.replace(v.get_value()[i], out_sharding=v.get_metadata()["out_sharding"][1:]),
                        blocks, is_leaf=_is_var)
  out = nnx.State(dict(params.items()))
  out["blocks"] = nnx.State({i: layer(i) for i in range(num_layers)})
  return out


def stack_params(params, template, shardings=None):
  """Per-layer layout -> the scan layout of `template` (abstract params of a scan_layers model), placed
  on `shardings` (same structure) when given."""
  per_layer = params["blocks"]
  layers = [nnx.to_pure_dict(per_layer[i]) for i in range(len(per_layer))]
  stack = lambda *xs: jnp.stack(xs)
  if shardings is not None:
    out_sh = nnx.to_pure_dict(shardings["blocks"])
    stacked = jax.jit(lambda ls: jax.tree.map(stack, *ls), out_shardings=out_sh)(layers)
  else:
    stacked = jax.tree.map(stack, *layers)
  out = nnx.State(dict(params.items()))
  blocks = jax.tree.map(lambda v: v.replace(v.get_value()), template["blocks"], is_leaf=_is_var)  # fresh copies
  nnx.replace_by_pure_dict(blocks, stacked)
  out["blocks"] = blocks
  return out
