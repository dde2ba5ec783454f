"""The preference-data stage: train and held-out rankings from the gold labeller, JSONL files or HF.

Sources (`preferences.source`):
  gold              the policy stage samples `replies` replies to task prompts; the gold function
                    (posttrain/gold.py) ranks them with noise. Written to workdir/data/preferences/
                    {train,test}.jsonl and read back on later runs (the stage's artifact).
  jsonl:<glob>      local files in either JSONL format (data/preferences.py), hash-split by prompt
  hf:<name>         hh | ultrafeedback | ultrafeedback_binarized (data/preference_hf.py)
"""

import collections
import os

import ml_collections
import numpy as np

from llm_jax import config as config_lib
from llm_jax import tasks as tasks_lib
from llm_jax.data import preference_hf, preferences
from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.load import load_stage
from llm_jax.posttrain import gold
from llm_jax.posttrain.prerequisites import require_stage
from llm_jax.posttrain.sampling import generate_padded
from llm_jax.tokenizer import load_tokenizer
from llm_jax.tokenizer.chat import detect_template, render_for_completion, stop_ids


def default_config() -> ml_collections.ConfigDict:
  """The `preferences` section."""
  c = ml_collections.ConfigDict()
  c.source = "gold"  # gold | jsonl:<glob> | hf:<name>
  c.dir = "data/preferences"  # (gold) where the labelled rankings are written, relative to the workdir
  c.policy_stage = "sft"  # (gold) the stage whose samples are ranked
  c.task = "arithmetic"  # (gold) task whose prompts (and answers) are used
  c.prompts = 256  # (gold) training prompts
  c.test_prompts = 64  # (gold) held-out prompts (the task's test split)
  c.replies = 4  # (gold) replies per prompt: K of each ranking
  c.temperature = 1.0  # (gold) sampling temperature of the replies
  c.top_p = 1.0
  c.max_new_tokens = 96
  c.batch_size = 32  # (gold) generation batch
  c.test_fraction = 0.1  # (jsonl, and hf sets without a test split) share of prompts held out
  c.max_items = 0  # (hf) rows read; 0: all
  return c


def require_sft(config, workdir: str, stage: str = "sft"):
  """(config resolved against the workdir's tokenizer, tokenizer); a one-line exit saying to run the SFT
  config first when checkpoints/<stage> is missing."""
  tokenizer = load_tokenizer(require_stage(workdir, stage, hint="configs/sft.py"))
  return config_lib.resolve(config, tokenizer), tokenizer


def task_prompts(cfg, split: str, n: int) -> list:
  """`n` examples of the configured task's `split` (prompt, answer)."""
  task = tasks_lib.make_task(cfg.preferences.task, cfg.get("tasks"), cfg.seed)
  return task.examples(split, n)


def sample_replies(workdir: str, stage: str, prompts, n: int, pc, seed: int, model=None) -> list[list[str]]:
  """`n` sampled replies (text) to each prompt (message tuples) from `stage` (or a loaded `model`)."""
  graphdef, params, stage_cfg, tokenizer = model or load_stage(workdir, stage)
  template = detect_template(tokenizer)
  engine = Engine(graphdef, params, stage_cfg.model.max_seq_len)
  ids = [render_for_completion(list(p), tokenizer, template=template) for p in prompts for _ in range(n)]
  sampling = SamplingParams(max_new_tokens=pc.max_new_tokens, temperature=pc.temperature, top_p=pc.top_p,
                            stop_ids=stop_ids(tokenizer, template), seed=seed)
  texts = [tokenizer.decode(c) for c in generate_padded(engine, ids, sampling, pc.batch_size)]
  return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]


def gold_rankings(cfg, workdir: str, split: str, model=None) -> list[preferences.Ranking]:
  """Label the policy's own samples on `split` prompts with the gold function (noisy rankings)."""
  pc = cfg.preferences
  examples = task_prompts(cfg, split, pc.prompts if split == "train" else pc.test_prompts)
  replies = sample_replies(workdir, pc.policy_stage, [ex.prompt for ex in examples], pc.replies, pc,
                           seed=cfg.seed + (split == "test"), model=model)
  rng = np.random.default_rng([cfg.seed, split == "test"])
  return [gold.label(ex.prompt, rs, ex.answer, cfg.gold, rng) for ex, rs in zip(examples, replies)]


def make_preferences(cfg, workdir: str, model=None) -> tuple[list, list]:
  """(train, held-out) rankings of cfg.preferences.source; gold labels are written once and reused."""
  pc = cfg.preferences
  kind, _, arg = pc.source.partition(":")
  if pc.source == "gold":
    out = []
    for split in ("train", "test"):
      path = os.path.join(workdir, pc.dir, f"{split}.jsonl")
      if not os.path.exists(path):
        print(f"[preferences] sampling and gold-labelling {split} rankings", flush=True)
        preferences.write_jsonl(path, gold_rankings(cfg, workdir, split, model))
      out.append(preferences.read_jsonl(path))
    print(f"[preferences] {len(out[0])} train / {len(out[1])} held-out rankings ({pc.dir})", flush=True)
    return out[0], out[1]
  skipped = collections.Counter()
  if kind == "jsonl" and arg:
    rankings = preferences.read_jsonl(arg, skipped)
  elif kind == "hf" and arg:
    if preference_hf.HF_SETS.get(arg, (None, None, None))[2] is not None:
      train = preference_hf.load_hf(arg, "train", pc.max_items, skipped)
      return train, preference_hf.load_hf(arg, "test", pc.max_items, skipped)
    rankings = preference_hf.load_hf(arg, "train", pc.max_items, skipped)
  else:
    raise ValueError(f"preferences.source={pc.source!r} is not gold, jsonl:<glob> or hf:<name>")
  if skipped:
    print(f"[preferences] skipped {dict(skipped)}", flush=True)
  return (preferences.split(rankings, "train", pc.test_fraction),
          preferences.split(rankings, "test", pc.test_fraction))
