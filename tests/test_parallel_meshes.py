"""Meshes of 8 CPU devices (a subprocess with XLA_FLAGS set before jax starts) train the tiny model to the
same losses as one device, and a checkpoint saved on data=2 x fsdp=2 x tensor=2 restores, resharded, on
fsdp=8 and on one device with the same values."""

import json
import os
import subprocess
import sys

import numpy as np

import parallel_runs
from llm_jax import parallel

HERE = os.path.dirname(os.path.abspath(__file__))


def helper_env(devices: int) -> dict:
  """`devices` CPU devices; cheaper LLVM code generation (the same HLO, so the same numerics): compiles
  dominate these runs."""
  flags = (f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0 "
           "--xla_llvm_disable_expensive_passes=true")
  env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
  env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(HERE), env.get("PYTHONPATH", "")])
  return env


def test_meshes_give_the_same_losses_and_checkpoints_reshard(tmp_path):
  out = tmp_path / "result.json"
  proc = subprocess.Popen([sys.executable, os.path.join(HERE, "parallel_runs.py"), "meshes", str(out), str(tmp_path)],
                          env=helper_env(8), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  reference = parallel_runs.reference_losses()  # one device, in this process, while the helper runs
  log, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, log[-3000:]
  result = json.loads(out.read_text())
  assert len(reference) == parallel_runs.STEPS
  for name, losses in result["losses"].items():
    np.testing.assert_allclose(losses, reference, rtol=1e-5, err_msg=name)
  # the 2x2x2 step-4 checkpoint, resumed on fsdp=8, continues with the same losses
  np.testing.assert_allclose(result["resumed_fsdp8"], reference, rtol=1e-5)
  assert result["fsdp8_equals_222"]
  saved = np.load(result["npz"])
  on_one = parallel_runs.flat_numpy(parallel_runs.restore_params(result["ckpt_dir"], parallel.make_mesh(shape=(1, 1, 1))))
  assert set(on_one) == set(saved.files)
  for key, value in on_one.items():
    np.testing.assert_array_equal(value, saved[key], err_msg=key)
