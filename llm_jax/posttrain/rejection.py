"""Rejection-sampling fine-tuning: sample N replies per training problem with the engine, keep the
correct ones (the shortest first), fine-tune on them with the SFT loop, and repeat for R rounds, each
round sampling fresh problems from the previous round's model.

Round r trains checkpoints/<stage>_round<r> (the last round: checkpoints/<stage>); its kept
conversations are written to workdir/data/<round stage>_samples.jsonl first and reused on resume.
Settings: the `rl` section (task, sampling, rl.rejection: rounds, problems, samples, keep, steps, ...).
"""

import json
import os

import ml_collections
import numpy as np

from llm_jax import parallel
from llm_jax.data.conversations import write_jsonl
from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.posttrain.rollouts import prompt_pool, sample_groups
from llm_jax.posttrain.sft import finetune, initial_params_from
from llm_jax.tasks import make_task
from llm_jax.tokenizer.chat import detect_template, stop_ids
from llm_jax.train import state as state_lib
from llm_jax.train.loop import stage_dir


def select(rewards_NxS: np.ndarray, lengths_NxS: np.ndarray, keep: int = 1, threshold: float = 1.0) -> list[list[int]]:
  """Per problem, the indices of up to `keep` samples with reward >= threshold, shortest first (ties:
  the earlier sample)."""
  out = []
  for rewards_S, lengths_S in zip(np.asarray(rewards_NxS), np.asarray(lengths_NxS)):
    correct = [int(j) for j in np.flatnonzero(rewards_S >= threshold)]
    out.append(sorted(correct, key=lambda j: (lengths_S[j], j))[:keep])
  return out


def round_train_config(cfg) -> ml_collections.ConfigDict:
  """The SFT loop settings of a round: the sft (or main) `train` section with rl.rejection's steps,
  batch size and learning rate, sequences of the model's full context."""
  jc = cfg.rl.rejection
  sft = cfg.get("sft")
  base = sft.train if sft is not None and sft.get("train") is not None else cfg.train
  train = ml_collections.ConfigDict(base.to_dict())
  train.update(dict(steps=jc.steps, batch_size=jc.batch_size, lr=jc.lr, seq_len=cfg.model.max_seq_len,
                    eval_every=0))
  return train


def sample_round(cfg, workdir: str, tokenizer, task, from_stage: str, round_index: int) -> tuple[list, dict]:
  """(kept conversations, stats) of one round: rl.rejection.samples replies to each of this round's
  problems from checkpoints/<from_stage>."""
  rc, jc = cfg.rl, cfg.rl.rejection
  template = detect_template(tokenizer)
  graphdef, abstract_params = state_lib.model_graphdef_and_shapes(cfg.model)
  mesh = parallel.make_mesh(cfg.mesh)
  shardings = parallel.tree_shardings(abstract_params, mesh, parallel.rules_dict(cfg.mesh))
  params = initial_params_from(cfg, workdir, from_stage)(abstract_params, shardings)
  engine = Engine(graphdef, params, cfg.model.max_seq_len)
  pool = prompt_pool(task, tokenizer, template, "train", jc.problems * jc.rounds, rc.max_prompt_len)
  problems = [pool[(round_index * jc.problems + i) % len(pool)] for i in range(jc.problems)]
  sampling = SamplingParams(max_new_tokens=rc.max_new_tokens, temperature=rc.temperature, top_k=rc.top_k,
                            top_p=rc.top_p, stop_ids=stop_ids(tokenizer, template), seed=cfg.seed + 1000 * round_index)
  ro = sample_groups(engine, tokenizer, problems, jc.samples, sampling, lambda t, ex: (task.reward(t, ex), {}),
                     template=template, batch_size=rc.rollout_batch)
  whole_NxS = ~ro.truncated & np.array([[bool(t.strip()) for t in row] for row in ro.texts])
  correct_NxS = ro.rewards * whole_NxS  # an empty reply, or one cut by the budget, is never kept
  chosen = select(correct_NxS, ro.lengths, jc.keep)
  convs = [list(ex.prompt) + [{"role": "assistant", "content": ro.texts[i][j]}]
           for i, (ex, js) in enumerate(zip(problems, chosen)) for j in js]
  stats = {"problems": len(problems), "samples": int(ro.rewards.size), "correct": float((correct_NxS >= 1).mean()),
           "solved": float(np.mean([bool(js) for js in chosen])), "kept": len(convs),
           "kept_len": float(np.mean([ro.lengths[i, j] for i, js in enumerate(chosen) for j in js])) if convs else 0.0}
  return convs, stats


def rejection_finetune(cfg, workdir: str, tokenizer, task=None, init_stage: str = "sft", stage: str = "rl") -> dict:
  """R rounds of sample -> keep correct (shortest first) -> fine-tune, from `init_stage` into `stage`."""
  jc = cfg.rl.rejection
  task = task or make_task(cfg.rl.task, cfg.get("tasks"), cfg.seed)
  round_cfg = ml_collections.ConfigDict(cfg.to_dict())
  round_cfg.train = round_train_config(cfg)
  previous, summary = init_stage, {}
  for r in range(jc.rounds):
    name = stage if r == jc.rounds - 1 else f"{stage}_round{r + 1}"
    summary_path = os.path.join(stage_dir(workdir, name), "summary.json")
    if os.path.exists(summary_path):
      with open(summary_path) as f:
        summary = json.load(f)
      print(f"[{name}] already trained: skipping", flush=True)
      previous = name
      continue
    path = os.path.join(workdir, "data", f"{name}_samples.jsonl")
    if not os.path.exists(path):
      convs, stats = sample_round(cfg, workdir, tokenizer, task, previous, r)
      print(f"[{name}] round {r + 1}/{jc.rounds}: {stats}", flush=True)
      if not convs:
        raise ValueError(f"rejection round {r + 1} kept no correct reply out of {stats['samples']}: checkpoints/"
                         f"{previous} solves none of its {task.name} problems; fine-tune it longer first")
      write_jsonl(path, convs)
      with open(path.replace(".jsonl", ".json"), "w") as f:
        json.dump(stats, f, indent=1)
    with open(path) as f:
      convs = [json.loads(line)["messages"] for line in f if line.strip()]
    summary = finetune(round_cfg, workdir, tokenizer, convs, None, init_stage=previous, stage=name,
                       template=detect_template(tokenizer))
    previous = name
  return summary
