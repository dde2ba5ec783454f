"""Building the sharded training state (params, optimizer state, step, RNG) without a host copy."""

import jax
import jax.numpy as jnp
from flax import nnx

from llm_jax import parallel
from llm_jax.model import Transformer


def model_graphdef_and_shapes(model_cfg):
  """(graphdef, abstract params) of the model, built without allocating any weights."""
  abstract_model = nnx.eval_shape(lambda: Transformer(model_cfg, nnx.Rngs(0)))
  graphdef, abstract_params = nnx.split(abstract_model)
  return graphdef, abstract_params


def init_params(model_cfg, seed: int, shardings):
  """Random initial parameters, created directly in their shards by a jitted initialiser."""
  return jax.jit(lambda: nnx.split(Transformer(model_cfg, nnx.Rngs(seed)))[1], out_shardings=shardings)()


def state_shapes_and_shardings(abstract_params, optimizer, mesh, rules):
  """Abstract train state and its NamedShardings, from the params' logical axis names."""
  abstract_state = {
      "params": abstract_params,
      "opt_state": jax.eval_shape(optimizer.init, abstract_params),
      "step": jax.ShapeDtypeStruct((), jnp.int32),
      "rng": jax.ShapeDtypeStruct((2,), jnp.uint32),
  }
  return abstract_state, parallel.tree_shardings(abstract_state, mesh, rules)


def new_state(params, optimizer, shardings, seed: int):
  """Fresh train state around `params` (random or loaded from an earlier stage)."""
  opt_state = jax.jit(optimizer.init, out_shardings=shardings["opt_state"])(params)
  return {"params": params, "opt_state": opt_state,
          "step": jax.device_put(jnp.zeros((), jnp.int32), shardings["step"]),
          "rng": jax.device_put(jax.random.key_data(jax.random.PRNGKey(seed)), shardings["rng"])}
