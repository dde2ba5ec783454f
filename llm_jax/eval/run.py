"""The eval stage: evaluate one trained stage on the tasks a config names; results into eval.json.

Task names (comma-separated in `eval.tasks`):
  loss                 held-out loss / bits per byte on workdir/data/val shards
  chat_loss            loss on the assistant tokens of held-out synthetic conversations
  identity | arithmetic | spelling   generate replies to held-out prompts; accuracy (+ pass@k)
  mc:<set or path>     multiple choice: mmlu, arc_easy, arc_challenge, hellaswag (HF), or a local .jsonl
  order:<set or path>  contamination probes on a multiple-choice set (item order, choice order)
Each task's replies go to workdir/samples/eval_<stage>_<task>.jsonl for inspection.
"""

import json
import os

import ml_collections

from llm_jax import tasks as tasks_lib
from llm_jax.eval import contamination, generative, loss, multiple_choice, results
from llm_jax.infer.engine import Engine
from llm_jax.infer.load import load_stage
from llm_jax.tokenizer.chat import detect_template


def default_config() -> ml_collections.ConfigDict:
  """The `eval` section."""
  c = ml_collections.ConfigDict()
  c.stage = "sft"  # checkpoint stage to evaluate (checkpoints/<stage>)
  c.tasks = "loss,chat_loss,identity,arithmetic,spelling"  # see llm_jax/eval/run.py for names
  c.num_examples = 50  # held-out examples per generative task (and conversations for chat_loss)
  c.num_samples = 1  # replies per prompt; > 1 (with temperature > 0) gives pass@k
  c.ks = "1"  # comma-separated k of pass@k reported (k <= num_samples)
  c.temperature = 0.0  # 0: greedy
  c.top_p = 1.0
  c.max_new_tokens = 160  # reply budget (a steps-first arithmetic answer needs ~100 tokens)
  c.batch_size = 16  # prompts per generation batch / sequences per loss batch
  c.loss_batches = 8  # batches of held-out shards for `loss`
  c.mc_limit = 0  # items per multiple-choice set; 0: all
  c.order_shuffles = 19  # shuffled orders per shard in the order test (p-value resolution 1/(1+n))
  c.order_shard_size = 4  # items per shard in the order test (a shard must fit the context)
  return c


def _mc_items(spec: str, limit: int) -> tuple[str, list[dict]]:
  if spec.endswith(".jsonl"):
    return os.path.splitext(os.path.basename(spec))[0], multiple_choice.read_items(spec, limit)
  return spec, multiple_choice.load_hf_items(spec, limit)


def _write_records(workdir: str, name: str, records: list[dict]) -> None:
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  with open(os.path.join(workdir, "samples", f"eval_{name}.jsonl"), "w") as f:
    for r in records:
      f.write(json.dumps(r, ensure_ascii=False) + "\n")


def run_eval(cfg, workdir: str, stage: str | None = None, suffix: str = "", model=None) -> dict:
  """Evaluate `stage` (default cfg.eval.stage) on cfg.eval.tasks; results are keyed
  eval/<task><suffix>/<metric>, merged into workdir/eval.json, and returned. `model`: an already
  loaded (graphdef, params, model_cfg, tokenizer) to evaluate instead of loading the stage."""
  ec = cfg.eval
  stage = stage or ec.stage
  graphdef, params, stage_cfg, tokenizer = model or load_stage(workdir, stage)
  max_len = stage_cfg.model.max_seq_len
  template = detect_template(tokenizer)
  task_cfg = cfg.get("tasks") or tasks_lib.default_config()
  engine, loglik, out = None, None, {}
  for name in [t.strip() for t in ec.tasks.split(",") if t.strip()]:
    print(f"[eval] {stage}: {name}", flush=True)
    kind, _, arg = name.partition(":")
    if name == "loss":
      val_dir = os.path.join(workdir, "data", "val")
      m = loss.shards_loss(graphdef, params, val_dir, tokenizer, seq_len=stage_cfg.train.seq_len,
                           batch_size=ec.batch_size, max_batches=ec.loss_batches)
      key = "loss"
    elif name == "chat_loss":
      convs = [c for t in tasks_lib.CHAT_TASKS for c in tasks_lib.make_task(t, task_cfg, cfg.seed).conversations(
          "test", ec.num_examples)]
      m = loss.conversations_loss(graphdef, params, convs, tokenizer, seq_len=stage_cfg.train.seq_len,
                                  batch_size=ec.batch_size, template=template)
      key = "chat_loss"
    elif name in tasks_lib.TASKS:
      engine = engine or Engine(graphdef, params, max_len)
      task = tasks_lib.make_task(name, task_cfg, cfg.seed)
      ks = [int(k) for k in str(ec.ks).split(",") if k.strip()]
      m, records = generative.evaluate_task(
          engine, tokenizer, task, task.examples("test", ec.num_examples), num_samples=ec.num_samples,
          temperature=ec.temperature, top_p=ec.top_p, max_new_tokens=ec.max_new_tokens,
          batch_size=ec.batch_size, ks=ks, template=template, seed=cfg.seed)
      key = name
      _write_records(workdir, f"{stage}_{name}{suffix}", records)
    elif kind in ("mc", "order") and arg:
      loglik = loglik or multiple_choice.make_loglikelihood(graphdef, params, max_len, ec.batch_size)
      key, items = _mc_items(arg, ec.mc_limit)
      if kind == "mc":
        m = multiple_choice.evaluate(items, tokenizer, loglik)
      else:
        texts = [it["context"] + it["choices"][it["answer"]] for it in items]
        probe = contamination.order_test(texts, tokenizer, loglik, shard_size=ec.order_shard_size,
                                         num_shuffles=ec.order_shuffles, seed=cfg.seed)
        choices = contamination.choice_order_test(items, tokenizer, loglik, seed=cfg.seed)
        m = {f"order_{k}": v for k, v in probe.items()} | {f"choice_{k}": v for k, v in choices.items()}
    else:
      raise ValueError(f"unknown eval task {name!r}; use loss, chat_loss, {', '.join(tasks_lib.TASKS)}, "
                       "mc:<set or .jsonl> or order:<set or .jsonl>")
    flat = results.flatten(key + suffix, m)
    print("[eval] " + ", ".join(f"{k} {v:.4g}" for k, v in flat.items()), flush=True)
    out.update(flat)
  results.merge_results(workdir, out)
  return out
