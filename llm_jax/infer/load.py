"""Load a trained stage (checkpoints/<stage>) of a workdir for inference: model, params, tokenizer."""

import json
import os

import jax
import ml_collections

from llm_jax import parallel
from llm_jax.tokenizer import load_tokenizer
from llm_jax.train import state as state_lib
from llm_jax.train.checkpoint import Checkpointer
from llm_jax.train.loop import stage_dir


def latest_stage(workdir: str, order=("rl", "sft", "base")) -> str:
  for stage in order:
    if os.path.exists(os.path.join(stage_dir(workdir, stage), "config.json")):
      return stage
  raise FileNotFoundError(f"no trained stage in {workdir!r}: run python -m llm_jax.main first")


def load_stage(workdir: str, stage: str | None = None, step: int | None = None):
  """(graphdef, params, config, tokenizer) of a stage's checkpoint, placed on the current devices."""
  stage = stage or latest_stage(workdir)
  directory = stage_dir(workdir, stage)
  config_path = os.path.join(directory, "config.json")
  if not os.path.exists(config_path):
    raise FileNotFoundError(f"{config_path} not found: stage {stage!r} was not trained in this workdir")
  with open(config_path) as f:
    cfg = ml_collections.ConfigDict(json.load(f))
  graphdef, abstract_params = state_lib.model_graphdef_and_shapes(cfg.model)
  mesh = parallel.make_mesh(shape=(jax.device_count(), 1, 1))
  shardings = parallel.tree_shardings(abstract_params, mesh, dict(cfg.mesh.rules))
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract_params, shardings)
  ckpt = Checkpointer(directory, cfg.checkpoint)
  params = ckpt.restore_params(abstract, step)
  ckpt.close()
  return graphdef, params, cfg, load_tokenizer(os.path.join(workdir, "tokenizer"))

