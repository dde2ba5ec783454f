"""Entry point: `python -m llm_jax.main --config=configs/nano.py --workdir=runs/nano [--config.a.b=v]`.

Loads the config (presets as `configs/x.py:preset`), then runs `run(config, workdir)` of the experiment
file the config names.
"""

import difflib
import importlib.util
import os
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/nano.py or configs/gpt2.py:350m.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: checkpoints, metrics, samples, report.md.")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flat_keys(cfg, prefix: str = "") -> list[str]:
  keys = []
  for k, v in cfg.items():
    name = f"{prefix}{k}"
    keys += flat_keys(v, name + ".") if hasattr(v, "items") else [name]
  return keys


def check_overrides(argv: list[str]) -> None:
  """Fail at once on a misspelled --config.a.b override, naming the nearest valid keys."""
  config_path = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if config_path is None:
    return
  module_path, _, preset = config_path.partition(":")
  if not os.path.exists(module_path):
    sys.exit(f"error: config file {module_path!r} does not exist (try configs/nano.py)")
  spec = importlib.util.spec_from_file_location("llm_jax_user_config", module_path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  valid = flat_keys(module.get_config(preset) if preset else module.get_config())
  for arg in argv:
    if arg.startswith("--config.") or arg.startswith("--noconfig.") :
      key = arg.split("=", 1)[0].split("config.", 1)[1]
      if key not in valid and not any(v.startswith(key + ".") for v in valid):
        near = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else "; see the config file for valid keys"
        sys.exit(f"error: unknown config key {key!r}{hint}")


def load_experiment(path: str):
  """The experiment module: a path relative to the cwd, or to the repository root."""
  candidates = [path, os.path.join(REPO_ROOT, path)]
  for candidate in candidates:
    if os.path.exists(candidate):
      spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(candidate))[0], candidate)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      if not hasattr(module, "run"):
        raise SystemExit(f"error: experiment {candidate} has no run(config, workdir) function")
      return module
  raise SystemExit(f"error: experiment file {path!r} not found (looked in {', '.join(candidates)})")


def check_workdir(workdir: str) -> str:
  workdir = os.path.abspath(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise SystemExit(f"error: cannot write to --workdir={workdir} ({e.strerror}); choose a writable folder")
  return workdir


def quiet_libraries() -> None:
  """Libraries log every checkpoint step at INFO; keep the console for our progress lines."""
  import logging as std_logging
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  for name in ("orbax", "absl", "jax", "datatrove", "trafilatura"):
    std_logging.getLogger(name).setLevel(std_logging.WARNING)


def main(argv):
  del argv
  quiet_libraries()
  config = _CONFIG.value
  if config is None or _WORKDIR.value is None:
    raise SystemExit("error: give --config=configs/<name>.py and --workdir=<run folder>")
  workdir = check_workdir(_WORKDIR.value)
  from llm_jax import parallel
  from llm_jax.train.loop import NonFiniteLoss
  parallel.maybe_initialize_distributed(config.mesh)
  try:
    load_experiment(config.experiment).run(config, workdir)
  except (ValueError, FileNotFoundError, NonFiniteLoss) as e:  # user-fixable: one line, no traceback
    if os.environ.get("LLM_JAX_TRACEBACK"):
      raise
    sys.exit(f"error: {e}  (set LLM_JAX_TRACEBACK=1 for the traceback)")


def run() -> None:
  check_overrides(sys.argv[1:])
  app.run(main)


if __name__ == "__main__":
  run()
