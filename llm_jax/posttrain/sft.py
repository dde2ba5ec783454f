"""Supervised fine-tuning: a trained stage's weights + packed conversations -> checkpoints/<stage>.

`finetune` trains on assistant tokens only (the render's loss mask), starting from the parameters of
`checkpoints/<init_stage>`; `midtrain` continues pretraining from a stage on token shards (e.g. a
mixture closer to chat data) and can run before `finetune`.
"""

import json
import os

import jax
import ml_collections

from llm_jax.data import pipeline, sft_pipeline
from llm_jax.model.config import shape_keys
from llm_jax.train import loop
from llm_jax.train.checkpoint import Checkpointer, abstract_like


def check_init_stage(cfg, workdir: str, init_stage: str) -> None:
  """One-line errors when `init_stage` was not trained here or has another model shape."""
  path = os.path.join(loop.stage_dir(workdir, init_stage), "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no trained stage {init_stage!r} in {workdir} ({path} is missing); train it first")
  with open(path) as f:
    want = shape_keys(ml_collections.ConfigDict(json.load(f)["model"]))
  have = shape_keys(cfg.model)
  diffs = [f"{k}: {init_stage} {want[k]!r} vs config {have.get(k)!r}" for k in want if have.get(k) != want[k]]
  if diffs:
    raise ValueError(f"the model config differs from stage {init_stage!r}'s: " + "; ".join(diffs))


def initial_params_from(cfg, workdir: str, init_stage: str):
  """An `initial_params` for loop.train: the latest parameters of checkpoints/<init_stage>."""
  check_init_stage(cfg, workdir, init_stage)

  def load(abstract_params, shardings):
    ckpt = Checkpointer(loop.stage_dir(workdir, init_stage), cfg.checkpoint)
    try:
      return ckpt.restore_params(abstract_like(abstract_params, shardings))
    finally:
      ckpt.close()

  return load


def start_from_hf(cfg, workdir: str):
  """For `init.hf`: (cfg with the imported model's shape, its tokenizer saved as workdir/tokenizer,
  initial_params placing the imported weights on the training mesh)."""
  from llm_jax import hf, parallel
  model_fields = {k: cfg.model[k] for k in ("dtype", "attention", "remat")}
  mesh, rules = parallel.make_mesh(cfg.mesh), parallel.rules_dict(cfg.mesh)
  _, params, model_cfg, tokenizer = hf.load_hf(cfg.init.hf, mesh=mesh, rules=rules, dtype=model_fields["dtype"],
                                               overrides={k: v for k, v in model_fields.items() if k != "dtype"})
  if tokenizer is None:
    raise ValueError(f"init.hf={cfg.init.hf!r} has no tokenizer files; fine-tuning needs the model's tokenizer")
  cfg = ml_collections.ConfigDict(cfg.to_dict())
  cfg.model = model_cfg
  cfg.train.seq_len = min(cfg.train.seq_len, model_cfg.max_seq_len)
  if jax.process_index() == 0 and not os.path.isdir(os.path.join(workdir, "tokenizer")):
    tokenizer.save(os.path.join(workdir, "tokenizer"))
  return cfg, tokenizer, lambda abstract_params, shardings: params


def finetune(cfg, workdir: str, tokenizer, train_convs, val_convs=None, init_stage: str = "base",
             stage: str = "sft", template: str = "llm_jax", initial_params=None) -> dict:
  """Fine-tune `init_stage` (or `initial_params`, e.g. from `start_from_hf`) on conversations into
  `stage` (resumed or skipped like any stage)."""
  tc = cfg.train
  seq_len = tc.seq_len
  init = initial_params or initial_params_from(cfg, workdir, init_stage)
  train_rows = sft_pipeline.pack(train_convs, tokenizer, seq_len, template=template, seed=cfg.seed)
  val_rows = sft_pipeline.pack(val_convs, tokenizer, seq_len, template=template, seed=cfg.seed) if val_convs else None
  print(f"[{stage}] packed {train_rows.stats['conversations']} conversations into {len(train_rows)} rows "
        f"({train_rows.stats['fill']:.0%} full); skipped: {train_rows.stats['skipped'] or 'none'}", flush=True)
  host = dict(process_index=jax.process_index(), process_count=jax.process_count())

  def make_train_iter(local_batch: int):
    return sft_pipeline.make_iterator(train_rows, batch_size=local_batch, seed=cfg.seed, **host)

  def make_val_iter(local_batch: int):
    return sft_pipeline.make_iterator(val_rows, batch_size=local_batch, seed=cfg.seed, shuffle=False,
                                      num_epochs=1, **host)

  summary = loop.train(cfg, workdir, stage, make_train_iter, make_val_iter if val_rows else None,
                       tokenizer.token_byte_lengths(), initial_params=init)
  if jax.process_index() == 0:
    with open(os.path.join(loop.stage_dir(workdir, stage), "data.json"), "w") as f:
      json.dump({"train": train_rows.stats, "val": val_rows.stats if val_rows else None}, f, indent=1)
  return summary


def midtrain(cfg, workdir: str, tokenizer, train_sources, val_dir: str | None = None, init_stage: str = "base",
             stage: str = "mid") -> dict:
  """Continue pretraining `init_stage` on token shards (a dir, or [(dir, weight), ...]) into `stage`."""
  tc = cfg.train
  init = initial_params_from(cfg, workdir, init_stage)
  common = dict(seq_len=tc.seq_len, seed=cfg.seed, packing="docs", process_index=jax.process_index(),
                process_count=jax.process_count())

  def make_train_iter(local_batch: int):
    return pipeline.make_iterator(train_sources, batch_size=local_batch, **common)

  def make_val_iter(local_batch: int):
    return pipeline.make_iterator(val_dir, batch_size=local_batch, shuffle=False, num_epochs=1, **common)

  return loop.train(cfg, workdir, stage, make_train_iter, make_val_iter if val_dir else None,
                    tokenizer.token_byte_lengths(), initial_params=init)
