"""Meshes of 8 CPU devices (a subprocess with XLA_FLAGS set before jax starts) train the tiny model to the
same losses as one device, and a checkpoint saved on data=2 x fsdp=2 x tensor=2 restores, resharded, on
fsdp=8 and on one device with the same values."""

import json

import numpy as np

import parallel_runs
from llm_jax import parallel


def test_meshes_give_the_same_losses_and_checkpoints_reshard(tmp_path):
  out = tmp_path / "result.json"
  parallel_runs.start_reference()  # one device, alongside
  parallel_runs.finish(parallel_runs.start("meshes", 8, out, tmp_path))
  reference = parallel_runs.reference_losses()
  result = json.loads(out.read_text())
  assert len(reference) == parallel_runs.STEPS
  for name, losses in result["losses"].items():
    print(f"{name}: max relative loss difference to one device {np.max(np.abs(np.divide(losses, reference) - 1)):.1e}")
    np.testing.assert_allclose(losses, reference, rtol=1e-5, err_msg=name)
  # the 2x2x2 step-4 checkpoint, resumed on fsdp=8, continues with the same losses
  np.testing.assert_allclose(result["resumed_fsdp8"], reference, rtol=1e-5)
  assert result["fsdp8_equals_222"]
  saved = np.load(result["npz"])
  on_one = parallel_runs.flat_numpy(parallel_runs.restore_params(result["ckpt_dir"], parallel.make_mesh(shape=(1, 1, 1))))
  assert set(on_one) == set(saved.files)
  for key, value in on_one.items():
    np.testing.assert_array_equal(value, saved[key], err_msg=key)
