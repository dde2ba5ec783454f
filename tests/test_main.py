"""The main command end to end on `nano:tiny`: stages, artifacts, exact resume after SIGKILL, corrupt
checkpoints, config errors. Each test runs the real command in a subprocess."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "nano.py") + ":tiny"


def main_cmd(workdir, *overrides):
  return [sys.executable, "-m", "llm_jax.main", f"--config={CONFIG}", f"--workdir={workdir}", *overrides]


def run_main(workdir, *overrides, check=True):
  proc = subprocess.run(main_cmd(workdir, *overrides), capture_output=True, text=True, cwd=ROOT, timeout=600)
  if check and proc.returncode != 0:
    raise AssertionError(f"main failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
  return proc


def final_params(workdir, step=None):
  from llm_jax.infer.load import load_stage
  _, params, _, _ = load_stage(workdir, "base", step)
  return jax.tree.leaves(params)


def copy_prepared(src, dst):
  """A new workdir sharing the prepared data and tokenizer (the data stage is then skipped)."""
  os.makedirs(dst)
  shutil.copytree(os.path.join(src, "data"), os.path.join(dst, "data"))
  shutil.copytree(os.path.join(src, "tokenizer"), os.path.join(dst, "tokenizer"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("nano_tiny"))
  proc = run_main(workdir)
  return workdir, proc


def test_all_stages_write_their_artifacts(finished_run):
  workdir, proc = finished_run
  for path in ("tokenizer", "data/train/index.json", "data/stats.json", "data/clean_report.json",
               "checkpoints/base/config.json", "checkpoints/base/summary.json", "metrics/base.jsonl",
               "samples/base.txt", "report.md", "plots/base_train_loss.png"):
    assert os.path.exists(os.path.join(workdir, path)), path
  assert glob.glob(os.path.join(workdir, "tb", "base", "events.out.tfevents.*"))
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics", "base.jsonl"))]
  assert {"train/loss", "train/grad_norm", "train/lr", "perf/tokens_per_s", "perf/mfu"} <= set(rows[0])
  val = [r["val/loss"] for r in rows if "val/loss" in r]
  assert len(val) >= 2 and val[-1] < val[0]  # validation loss falls
  assert "eta" in proc.stderr and "tok/s" in proc.stderr  # the progress line
  # a second run finds every artifact and skips all the work
  again = run_main(workdir)
  assert "already trained" in again.stdout


def test_sigkill_then_resume_is_bitwise_exact(finished_run, tmp_path):
  reference, _ = finished_run
  workdir = str(tmp_path / "killed")
  copy_prepared(reference, workdir)
  proc = subprocess.Popen(main_cmd(workdir), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpt_dir = os.path.join(workdir, "checkpoints", "base")
  deadline = time.time() + 300
  while not os.path.isdir(os.path.join(ckpt_dir, "10")):  # a finalised checkpoint at step 10
    assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoints"
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not os.path.exists(os.path.join(ckpt_dir, "summary.json")), "killed too late to test resume"
  killed_at = max(int(d) for d in os.listdir(ckpt_dir) if d.isdigit())
  assert killed_at < 40
  run_main(workdir)
  for a, b in zip(final_params(reference), final_params(workdir)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_corrupt_latest_checkpoint_is_skipped_and_redone(finished_run, tmp_path):
  reference, _ = finished_run
  workdir = str(tmp_path / "corrupt")
  shutil.copytree(reference, workdir)
  ckpt_dir = os.path.join(workdir, "checkpoints", "base")
  os.remove(os.path.join(ckpt_dir, "summary.json"))
  for path in glob.glob(os.path.join(ckpt_dir, "40", "state", "**", "*"), recursive=True):
    if os.path.isfile(path):
      with open(path, "wb") as f:
        f.write(b"garbage")
  proc = run_main(workdir, "--config.stages=pretrain")
  assert "partial or corrupt" in proc.stdout and "/40" in proc.stdout
  assert glob.glob(os.path.join(ckpt_dir, "40.corrupt-*"))
  for a, b in zip(final_params(reference), final_params(workdir)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_resuming_with_another_model_shape_names_the_keys(finished_run, tmp_path):
  reference, _ = finished_run
  workdir = str(tmp_path / "shape")
  shutil.copytree(reference, workdir)
  os.remove(os.path.join(workdir, "checkpoints", "base", "summary.json"))
  proc = run_main(workdir, "--config.model.d_model=96", "--config.stages=pretrain", check=False)
  assert proc.returncode != 0
  assert "d_model: checkpoint 64 vs config 96" in proc.stderr


def test_misspelled_override_names_the_nearest_key(tmp_path):
  proc = run_main(str(tmp_path), "--config.train.lrr=0.1", check=False)
  assert proc.returncode != 0
  assert "unknown config key 'train.lrr'" in proc.stderr and "train.lr" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_unwritable_workdir_and_missing_data_fail_in_one_line(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  proc = run_main(str(blocker / "run"), check=False)
  assert proc.returncode != 0 and "cannot write to --workdir" in proc.stderr
  proc = run_main(str(tmp_path / "w"), "--config.data.source=files:/nonexistent/*.txt", check=False)
  assert proc.returncode != 0 and "/nonexistent/*.txt" in proc.stderr


def test_sample_command_and_overlong_prompt(finished_run):
  workdir, _ = finished_run
  cmd = [sys.executable, "-m", "llm_jax.sample", f"--workdir={workdir}", "--max_new_tokens=8", "--seed=1"]
  proc = subprocess.run(cmd + ["--prompt=The meaning of", "--prompt=Exceptions"], capture_output=True,
                        text=True, cwd=ROOT, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "--- 'The meaning of'" in proc.stdout and "--- 'Exceptions'" in proc.stdout
  proc = subprocess.run(cmd + ["--prompt=" + "word " * 400], capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert proc.returncode != 0 and "does not fit the model's context" in proc.stderr
  assert "Traceback" not in proc.stderr
