"""The preference stages' shared loop: a non-finite loss stops the stage (with the error main prints as one
line) before anything bad is saved."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from llm_jax.config import base_config
from llm_jax.posttrain import fit
from llm_jax.train.checkpoint import Checkpointer
from llm_jax.train.loop import NonFiniteLoss, stage_dir


def test_nonfinite_loss_stops_before_it_is_saved_and_the_run_resumes(tmp_path):
  cfg = base_config()
  cfg.model.vocab_size = 32
  tc = fit.default_config()
  tc.update(dict(steps=6, log_every=1, checkpoint_every=2, tensorboard=False))
  abstract = {"w": jax.ShapeDtypeStruct((2,), jnp.float32)}

  def step(state, i, bad_at):
    loss = jnp.float32(np.nan if i + 1 == bad_at else 1.0)
    return {"w": state["w"] + 1}, {"train/loss": loss}

  def run(bad_at):
    return fit.run_stage(cfg, str(tmp_path), "toy", tc, abstract, lambda: {"w": jnp.zeros(2)},
                         lambda s, i: step(s, i, bad_at))

  with pytest.raises(NonFiniteLoss, match=r"non-finite loss \(nan\) at step 3; nothing after step 2"):
    run(bad_at=3)
  ckpt = Checkpointer(stage_dir(str(tmp_path), "toy"), cfg.checkpoint)
  assert max(ckpt.steps()) == 2  # the bad step 3 (and nothing after it) was not saved
  ckpt.close()
  summary = run(bad_at=0)  # the same command resumes from step 2 and finishes
  assert summary["steps"] == 6 and summary["train/loss"] == 1.0
  ckpt = Checkpointer(stage_dir(str(tmp_path), "toy"), cfg.checkpoint)
  restored = ckpt.restore_latest(abstract)
  ckpt.close()
  assert restored[0] == 6 and np.allclose(restored[1]["w"], 6.0)  # 2 restored + 4 more steps
