"""Two processes on one machine (jax.distributed over localhost, 4 CPU devices each) train on one
data=2 x fsdp=2 x tensor=2 mesh: each feeds only its rows, only process 0 writes metrics, both write
their checkpoint shards, and the losses match a single-process run."""

import json
import socket

import numpy as np

import parallel_runs


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
  port, workdir = free_port(), tmp_path / "run"
  parallel_runs.start_reference()  # one device, alongside (once per session)
  procs = [parallel_runs.start("worker", 4, tmp_path / f"{i}.json", workdir, port, i) for i in range(2)]
  logs = [parallel_runs.finish(p) for p in procs]
  reference = parallel_runs.reference_losses()
  for i in range(2):
    info = json.loads((tmp_path / f"{i}.json").read_text())
    assert info == {"process_count": 2, "devices": 8, "local": 4}
  rows = [json.loads(line) for line in open(workdir / "metrics" / "base.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, parallel_runs.STEPS + 1))  # one writer
  losses = [r["train/loss"] for r in rows]
  print(f"two processes: max relative loss difference to one {np.max(np.abs(np.divide(losses, reference) - 1)):.1e}")
  np.testing.assert_allclose(losses, reference, rtol=1e-5)
  assert (workdir / "checkpoints" / "base" / str(parallel_runs.STEPS)).is_dir()
  assert json.loads((workdir / "checkpoints" / "base" / "summary.json").read_text())["steps"] == parallel_runs.STEPS
  assert "memory per device" in logs[0] and "memory per device" not in logs[1]  # process 0 prints
