"""Helper of test_parallel_meshes.py and test_multihost.py: the tiny model trained by the real loop on
synthetic data, on any mesh and in any number of processes. Run as a script (XLA_FLAGS set by the
caller before jax starts):

  python tests/parallel_runs.py meshes OUT_JSON WORKDIR [single] # every mesh of MESHES in one process
  python tests/parallel_runs.py worker OUT_JSON WORKDIR PORT ID  # one of two processes, mesh 2x2x2
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

STEPS, BATCH, SEQ = 6, 8, 32
MESHES = {"data8": (8, 1, 1), "fsdp4_tensor2": (1, 4, 2), "data2_fsdp2_tensor2": (2, 2, 2)}
HERE = os.path.dirname(os.path.abspath(__file__))


def config(mesh=(1, 1, 1), every_steps=100):
  from conftest import tiny_config
  cfg = tiny_config(steps=STEPS, batch_size=BATCH, seq_len=SEQ, log_every=1, eval_every=0)
  cfg.mesh.update(dict(zip(("data", "fsdp", "tensor"), mesh)))
  cfg.checkpoint.update(dict(every_steps=every_steps, keep=10))
  return cfg


class SyntheticRows:
  """Global batch `i` is fixed by the seed; this process yields its contiguous share of the rows."""

  def __init__(self, local_batch: int, process_index: int):
    self.local, self.offset, self.i = local_batch, process_index * local_batch, 0

  def __next__(self):
    rng = np.random.default_rng([7, self.i])
    rows = rng.integers(0, 256, (BATCH, SEQ + 1)).astype(np.int32)[self.offset:self.offset + self.local]
    self.i += 1
    shape = rows[:, :-1].shape
    return {"tokens": rows[:, :-1], "targets": rows[:, 1:], "loss_mask": np.ones(shape, np.float32),
            "positions": np.broadcast_to(np.arange(SEQ, dtype=np.int32), shape), "segment_ids": np.ones(shape, np.int32)}

  def get_state(self):
    return {"i": self.i}

  def set_state(self, state):
    self.i = state["i"]


def numpy_params(abstract, shardings=None, seed: int = 0):
  """Seeded host-random weights (norm scales 1) placed on `shardings`: the same values on any mesh and
  in any process, without compiling a random initialiser."""
  import jax
  from flax import nnx
  rng = np.random.default_rng(seed)

  def one(var, sharding=None):
    shape = var.get_value().shape
    value = rng.normal(0, 0.02, shape).astype(np.float32) if len(shape) > 1 else np.ones(shape, np.float32)
    if sharding is None:
      return var.replace(jax.numpy.asarray(value))
    return var.replace(jax.make_array_from_callback(shape, sharding.get_value(), lambda index: value[index]))
  is_var = lambda x: isinstance(x, nnx.Variable)
  if shardings is None:
    return jax.tree.map(one, abstract, is_leaf=is_var)
  return jax.tree.map(one, abstract, shardings, is_leaf=is_var)


def train(cfg, workdir: str) -> list[float]:
  """Per-step train/loss of `loop.train` on the synthetic rows (read back from the metrics jsonl)."""
  import jax
  from llm_jax.train import loop
  from llm_jax.train.metrics import read_metrics
  loop.train(cfg, workdir, "base", lambda b: SyntheticRows(b, jax.process_index()), None, np.ones(320),
             initial_params=numpy_params)
  return [r["train/loss"] for r in read_metrics(os.path.join(workdir, "metrics", "base.jsonl"))]


def helper_env(devices: int) -> dict:
  """`devices` CPU devices; cheaper LLVM code generation (the same HLO, so the same numerics): compiles
  dominate these runs."""
  flags = (f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0 "
           "--xla_llvm_disable_expensive_passes=true")
  env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
  env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(HERE), env.get("PYTHONPATH", "")])
  return env


def start(mode: str, devices: int, *args) -> subprocess.Popen:
  """This script in a subprocess with `devices` CPU devices."""
  return subprocess.Popen([sys.executable, os.path.join(HERE, "parallel_runs.py"), mode, *map(str, args)],
                          env=helper_env(devices), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
  log, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, log[-3000:]
  return log


_REFERENCE = {}


def start_reference() -> None:
  """Start the one-device run in the background (once per test session); `reference_losses` waits."""
  if not _REFERENCE:
    workdir = tempfile.mkdtemp(prefix="llm_jax_reference_")
    _REFERENCE.update(workdir=workdir, proc=start("meshes", 1, os.path.join(workdir, "out.json"), workdir, "single"))


def reference_losses() -> tuple[float, ...]:
  """Per-step losses of the run on a single device."""
  start_reference()
  if "losses" not in _REFERENCE:
    finish(_REFERENCE["proc"])
    with open(os.path.join(_REFERENCE["workdir"], "out.json")) as f:
      _REFERENCE["losses"] = tuple(json.load(f)["losses"]["single"])
    shutil.rmtree(_REFERENCE["workdir"], ignore_errors=True)
  return _REFERENCE["losses"]


def restore_params(directory: str, mesh):
  """Step-latest params of a checkpoint directory, placed on `mesh` by the default rules."""
  import jax
  from llm_jax import parallel
  from llm_jax.train import state as state_lib
  from llm_jax.train.checkpoint import Checkpointer
  cfg = config()
  _, abstract = state_lib.model_graphdef_and_shapes(cfg.model)
  shardings = parallel.tree_shardings(abstract, mesh, parallel.rules_dict(cfg.mesh))
  target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings)
  ckpt = Checkpointer(directory, cfg.checkpoint)
  params = ckpt.restore_params(target)
  ckpt.close()
  return params


def flat_numpy(params) -> dict:
  import jax
  from flax import nnx
  return {".".join(map(str, path)): np.asarray(jax.device_get(v.get_value()))
          for path, v in nnx.to_flat_state(params)}


def run_meshes(out: str, workdir: str, only: str = "") -> None:
  """Every mesh of MESHES (`only="single"`: just the one-device mesh); then the 2x2x2 run's step-4
  checkpoint resumed on fsdp=8, and its final params restored on fsdp=8 and on 2x2x2 (equal) and saved
  as npz for a 1-device restore by the test."""
  from llm_jax import parallel
  if only == "single":
    with open(out, "w") as f:
      json.dump({"losses": {"single": train(config(), os.path.join(workdir, "single"))}}, f)
    return
  result = {"losses": {}}
  for name, mesh in MESHES.items():
    every = 2 if name == "data2_fsdp2_tensor2" else 100
    result["losses"][name] = train(config(mesh, every), os.path.join(workdir, name))
  src, dst = os.path.join(workdir, "data2_fsdp2_tensor2"), os.path.join(workdir, "resumed_fsdp8")
  shutil.copytree(src, dst)
  shutil.rmtree(os.path.join(dst, "checkpoints", "base", str(STEPS)))
  os.remove(os.path.join(dst, "checkpoints", "base", "summary.json"))
  result["resumed_fsdp8"] = train(config((1, 8, 1)), dst)
  ckpt_dir = os.path.join(src, "checkpoints", "base")
  on_fsdp8 = flat_numpy(restore_params(ckpt_dir, parallel.make_mesh(shape=(1, 8, 1))))
  on_222 = flat_numpy(restore_params(ckpt_dir, parallel.make_mesh(shape=(2, 2, 2))))
  result["fsdp8_equals_222"] = all(np.array_equal(on_fsdp8[k], on_222[k]) for k in on_222)
  np.savez(os.path.join(workdir, "params.npz"), **on_fsdp8)
  result["ckpt_dir"], result["npz"] = ckpt_dir, os.path.join(workdir, "params.npz")
  with open(out, "w") as f:
    json.dump(result, f)


def run_worker(out: str, workdir: str, port: int, process_id: int) -> None:
  """One of two processes (4 CPU devices each) training on the 2x2x2 mesh over all 8 devices."""
  import jax
  from llm_jax import parallel
  cfg = config((2, 2, 2))
  cfg.mesh.update(dict(num_processes=2, coordinator_address=f"localhost:{port}", process_id=process_id))
  parallel.maybe_initialize_distributed(cfg.mesh)
  info = {"process_count": jax.process_count(), "devices": jax.device_count(), "local": jax.local_device_count()}
  train(cfg, workdir)
  with open(out, "w") as f:
    json.dump(info, f)


if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  mode, args = sys.argv[1], sys.argv[2:]
  if mode == "meshes":
    run_meshes(*args)
  else:
    run_worker(args[0], args[1], int(args[2]), int(args[3]))
