"""Orbax checkpoints of the whole training state: params, optimizer state, step, data-iterator state.

Saves are asynchronous; a partial or unreadable latest checkpoint is skipped with a warning and the
previous one is used; restoring into a model of another shape fails naming the differing keys. With
several processes every one calls save/restore (each writes and reads its own shards; orbax has process 0
write the metadata), and a restore onto another mesh reshards to the target's shardings.
"""

import base64
import json
import logging
import os
import time

import jax
import ml_collections
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.every_steps = 250  # save interval (the final step is always saved)
  c.keep = 3  # checkpoints kept per stage
  c.async_save = True  # write in the background while training goes on
  return c


def _encode_data_state(state):
  if isinstance(state, bytes):
    return {"bytes_b64": base64.b64encode(state).decode()}
  return {"json": state}


def _decode_data_state(blob):
  if blob is None:
    return None
  return base64.b64decode(blob["bytes_b64"]) if "bytes_b64" in blob else blob["json"]


class Checkpointer:
  """One stage's checkpoints under `directory` (e.g. workdir/checkpoints/base)."""

  def __init__(self, directory: str, cfg):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=cfg.keep, save_interval_steps=cfg.every_steps, enable_async_checkpointing=cfg.async_save,
        create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def save(self, step: int, state, data_state=None, meta: dict | None = None, force: bool = False) -> bool:
    args = ocp.args.Composite(
        state=ocp.args.PyTreeSave(state),
        data=ocp.args.JsonSave(_encode_data_state(data_state)),
        meta=ocp.args.JsonSave(meta or {}))
    return self.manager.save(step, args=args, force=force)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def read_meta(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta

  def restore_latest(self, abstract_state, expect_meta: dict | None = None):
    """(step, state, data_state, meta) of the newest readable checkpoint, or None if there is none.

    `abstract_state` (jax.ShapeDtypeStruct leaves with shardings) decides structure and placement, so a
    checkpoint saved on one mesh restores onto another. `expect_meta` entries must match the saved ones.
    """
    for step in reversed(self.steps()):
      try:
        meta = self.read_meta(step)
      except Exception as e:  # unreadable: skip to the previous one
        self._set_aside(step, f"unreadable metadata ({type(e).__name__})")
        continue
      check_meta(meta, expect_meta or {}, self.directory)
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=_restore_args(abstract_state), data=ocp.args.JsonRestore()))
      except Exception as e:
        self._set_aside(step, f"{type(e).__name__}: {str(e)[:200]}")
        continue
      return step, restored.state, _decode_data_state(restored.data), meta
    return None

  def _set_aside(self, step: int, why: str) -> None:
    """Move a bad checkpoint out of the way (kept for inspection) so training can write that step again."""
    src = os.path.join(self.directory, str(step))
    dst = f"{src}.corrupt-{int(time.time())}"
    if jax.process_index() == 0:  # one process moves it (shared filesystem); the others wait for that
      os.rename(src, dst)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"llm_jax_set_aside_{step}")
    self.manager.reload()
    logging.warning("checkpoint %s is partial or corrupt (%s); moved to %s, using the previous one", src, why, dst)
    print(f"warning: checkpoint {src} is partial or corrupt; moved to {dst}, using the previous one", flush=True)

  def restore_params(self, abstract_params, step: int | None = None):
    """Only the parameters of checkpoint `step` (latest by default): for sampling, export, next stages."""
    steps = self.steps()
    if not steps:
      raise FileNotFoundError(f"no checkpoint in {self.directory}; train this stage first")
    step = steps[-1] if step is None else step
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=_restore_args({"params": abstract_params}, partial=True)))
    return restored.state["params"]

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def _restore_args(abstract, partial: bool = False):
  return ocp.args.PyTreeRestore(item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                                partial_restore=partial)


def check_meta(saved: dict, expected: dict, where: str) -> None:
  """Raise naming every key whose saved value differs (e.g. model shape fields)."""
  for section, want in expected.items():
    have = saved.get(section)
    if have is None or not isinstance(want, dict):
      continue
    keys = list(want) + [k for k in have if k not in want]  # a key on one side only is a difference too
    diffs = [f"{k}: checkpoint {have.get(k)!r} vs config {want.get(k)!r}" for k in keys if have.get(k) != want.get(k)]
    if diffs:
      raise ValueError(f"checkpoint in {where} was saved with a different {section}: " + "; ".join(diffs) +
                       ". Use the same config, or a new --workdir")


def abstract_like(state, shardings):
  """ShapeDtypeStructs with shardings: the restore target for `state`'s structure."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings)


def write_json(path: str, obj) -> None:
  """Atomic JSON write (temp file then rename); only process 0 writes (reports, configs, summaries)."""
  if jax.process_index() != 0:
    return
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2, default=str)
  os.replace(tmp, path)
