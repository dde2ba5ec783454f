"""The training loop in-process: NaN stops with the step and intact checkpoints; batch checks."""

import os

import jax
import numpy as np
import pytest

from conftest import tiny_config
from llm_jax import parallel
from llm_jax.train import loop
from llm_jax.train.pretrain import pretrain


def test_nonfinite_loss_stops_naming_the_step_and_keeps_checkpoints(byte_shards, tmp_path):
  train_dir, val_dir, tok = byte_shards
  cfg = tiny_config(steps=30, lr=1e9, warmup_steps=0, grad_clip=0.0, eval_every=0)
  with pytest.raises(loop.NonFiniteLoss, match=r"non-finite loss or gradient at step \d+") as err:
    pretrain(cfg, str(tmp_path), train_dir, val_dir, tok)
  assert "checkpoints" in str(err.value)
  # the checkpoints written before the failure restore (the bad update was never applied)
  _, params, _, _ = load_stage_with_tokenizer(tmp_path, tok)
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))


def load_stage_with_tokenizer(workdir, tok):
  from llm_jax.infer.load import load_stage
  tok.save(os.path.join(workdir, "tokenizer"))
  return load_stage(str(workdir), "base")


def test_skipping_nonfinite_steps_when_configured(byte_shards, tmp_path):
  train_dir, val_dir, tok = byte_shards
  cfg = tiny_config(steps=6, lr=1e9, warmup_steps=0, grad_clip=0.0, eval_every=0, max_nonfinite_skips=100)
  summary = pretrain(cfg, str(tmp_path), train_dir, val_dir, tok)
  assert summary["steps"] == 6


def test_batch_that_does_not_split_is_a_clear_error():
  mesh = parallel.make_mesh(parallel.default_config())
  cfg = tiny_config(batch_size=6, grad_accum=4).train
  with pytest.raises(ValueError, match="does not divide by train.grad_accum"):
    loop._check_batch(cfg, mesh, {"batch": "data+fsdp"})
  with pytest.raises(ValueError, match="mesh data\\*fsdp\\*tensor"):
    bad = parallel.default_config()
    bad.update(dict(data=2, fsdp=1, tensor=1))
    parallel.mesh_shape(bad, 1)
