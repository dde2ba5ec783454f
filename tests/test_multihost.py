"""Two processes on one machine (jax.distributed over localhost, 4 CPU devices each) train on one
data=2 x fsdp=2 x tensor=2 mesh: each feeds only its rows, only process 0 writes metrics, both write
their checkpoint shards, and the losses match a single-process run."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

import parallel_runs
from test_parallel_meshes import HERE, helper_env


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
  port, workdir = free_port(), tmp_path / "run"
  procs = [subprocess.Popen([sys.executable, os.path.join(HERE, "parallel_runs.py"), "worker", str(tmp_path / f"{i}.json"),
                             str(workdir), str(port), str(i)], env=helper_env(4), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  reference = parallel_runs.reference_losses()  # while the workers run
  logs = [p.communicate(timeout=600)[0] for p in procs]
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-3000:]
  for i in range(2):
    info = json.loads((tmp_path / f"{i}.json").read_text())
    assert info == {"process_count": 2, "devices": 8, "local": 4}
  rows = [json.loads(line) for line in open(workdir / "metrics" / "base.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, parallel_runs.STEPS + 1))  # one writer
  np.testing.assert_allclose([r["train/loss"] for r in rows], reference, rtol=1e-5)
  assert (workdir / "checkpoints" / "base" / str(parallel_runs.STEPS)).is_dir()
  assert json.loads((workdir / "checkpoints" / "base" / "summary.json").read_text())["steps"] == parallel_runs.STEPS
  assert "memory per device" in logs[0] and "memory per device" not in logs[1]  # process 0 prints
