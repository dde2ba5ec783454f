"""experiments/speedrun.py and experiments/grpo.py compose the stages in order, hand each stage its own
settings and skip what exists (stage functions replaced by recorders: no training here); the configs
that use them build with consistent shapes; the before/after-RL report section."""

import importlib.util
import json
import os

import pytest

from llm_jax.eval import compare
from llm_jax.eval.results import merge_results
from llm_jax.posttrain.rl_eval import write_before_after
from llm_jax.stages import selected
from llm_jax.tokenizer.bytes import ByteTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path: str, name: str):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("path,preset", [("configs/nano.py", ""), ("configs/nano.py", "tiny"),
                                         ("configs/nano.py", "tiny_full"), ("configs/grpo.py", ""),
                                         ("configs/grpo.py", "tiny"), ("configs/gpt2.py", "124m"),
                                         ("configs/llama.py", "1b")])
def test_configs_compose_the_pipeline(path, preset):
  c = load(path, "cfg").get_config(preset)
  experiment = load(c.experiment, "experiment")
  assert selected(c.stages, experiment.STAGES)  # the preset's stages exist in its experiment
  assert c.rl.max_prompt_len + c.rl.max_new_tokens <= c.model.max_seq_len
  assert c.sft.train.seq_len <= c.model.max_seq_len
  assert (c.rl.prompts_per_step * c.rl.group_size) % c.rl.minibatches == 0
  if path == "configs/nano.py":
    assert c.experiment == "experiments/speedrun.py"
    assert ("sft" in selected(c.stages, experiment.STAGES)) == (preset != "tiny")  # tiny: pretraining only


@pytest.fixture
def recorded(monkeypatch, tmp_path):
  """experiments/speedrun.py with every stage function replaced by a recorder of (stage, settings)."""
  speedrun, calls, wd = load("experiments/speedrun.py", "speedrun"), [], str(tmp_path)

  def trained(stage):
    os.makedirs(os.path.join(wd, "checkpoints", stage), exist_ok=True)
    open(os.path.join(wd, "checkpoints", stage, "summary.json"), "w").write("{}")

  def record(name, result=None, mark=None):
    def fn(*args, **kwargs):
      calls.append((name, args, kwargs))
      if mark:
        trained(mark(args, kwargs))
      return result
    return fn

  ByteTokenizer().save(os.path.join(wd, "tokenizer"))
  monkeypatch.setattr(speedrun, "prepare_data", record("data", {"tokenizer_dir": os.path.join(wd, "tokenizer"),
                                                                "train_dir": "t", "val_dir": "v"}))
  monkeypatch.setattr(speedrun, "pretrain", record("pretrain", mark=lambda a, k: "base"))
  monkeypatch.setattr(speedrun, "write_samples", record("samples", []))
  monkeypatch.setattr(speedrun, "finetune", record("sft", mark=lambda a, k: k["stage"]))
  monkeypatch.setattr(speedrun, "run_rl", record("rl", mark=lambda a, k: k["stage"]))
  monkeypatch.setattr(speedrun, "write_chat_samples", record("chat_samples", []))
  monkeypatch.setattr(speedrun, "evaluate_stages", record("eval"))
  monkeypatch.setattr(speedrun, "write_report", record("report", "report.md"))
  config = load("configs/nano.py", "nano").get_config("tiny_full")
  config.sft.update(dict(num_conversations=12, val_conversations=4))
  return speedrun, config, calls, wd


def test_speedrun_runs_stages_in_order_with_their_settings(recorded):
  speedrun, config, calls, wd = recorded
  speedrun.run(config, wd)
  assert [c[0] for c in calls] == ["data", "pretrain", "samples", "sft", "chat_samples", "rl", "chat_samples",
                                   "eval", "report"]
  by_name = {name: (args, kwargs) for name, args, kwargs in calls}
  assert by_name["pretrain"][0][0].train.steps == config.train.steps  # pretraining reads the top-level train
  sft_args, sft_kwargs = by_name["sft"]
  assert sft_args[0].train.to_dict() == config.sft.train.to_dict() and sft_kwargs["init_stage"] == "base"
  assert len(sft_args[3]) == 12 and len(sft_args[4]) == 4  # train and held-out conversations
  rl_args, rl_kwargs = by_name["rl"]
  assert rl_kwargs == {"init_stage": "sft", "stage": "rl"} and rl_args[0].rl.steps == config.rl.steps
  assert by_name["eval"][0][2] == ("sft", "rl")
  assert rl_args[0].model.vocab_size == -(-ByteTokenizer().vocab_size // 64) * 64  # resolved from the tokenizer


def test_speedrun_skips_trained_stages_and_needs_sft_for_rl(recorded):
  speedrun, config, calls, wd = recorded
  speedrun.run(config, wd)
  calls.clear()
  os.makedirs(os.path.join(wd, "samples"))
  for stage in ("sft", "rl"):
    open(os.path.join(wd, "samples", f"{stage}.txt"), "w").write("x")
  speedrun.run(config, wd)
  assert "sft" not in [c[0] for c in calls] and "chat_samples" not in [c[0] for c in calls]
  calls.clear()
  os.remove(os.path.join(wd, "checkpoints", "sft", "summary.json"))
  config.stages = "rl,report"
  with pytest.raises(SystemExit, match="checkpoints/sft"):
    speedrun.run(config, wd)
  assert [c[0] for c in calls] == []  # no data preparation when only later stages are asked for


def test_evaluate_stages_skips_evaluated_and_untrained(monkeypatch, tmp_path):
  wd, runs = str(tmp_path), []
  os.makedirs(os.path.join(wd, "checkpoints", "sft"))
  open(os.path.join(wd, "checkpoints", "sft", "summary.json"), "w").write("{}")
  monkeypatch.setattr(compare, "run_eval", lambda cfg, w, stage, suffix: runs.append((stage, suffix)) or {})
  config = load("configs/nano.py", "nano").get_config("tiny_full")
  config.eval.tasks = "loss,arithmetic,mc:data/arc.jsonl"
  assert compare.task_names(config.eval.tasks) == ["loss", "arithmetic", "arc"]
  compare.evaluate_stages(config, wd, ("sft", "rl"))
  assert runs == [("sft", "@sft")]  # rl is not trained
  merge_results(wd, {"eval/loss@sft/loss": 1.0, "eval/arithmetic@sft/accuracy": 0.5, "eval/arc@sft/acc": 0.3})
  compare.evaluate_stages(config, wd, ("sft",))
  assert runs == [("sft", "@sft")]


def test_before_after_section(tmp_path):
  wd = str(tmp_path)
  merge_results(wd, {"eval/rl_arithmetic@sft/pass@1": 0.25, "eval/rl_arithmetic@sft/pass@16": 0.5,
                     "eval/rl_arithmetic@sft/response_len": 80.0, "eval/rl_arithmetic@sft/n": 32,
                     "eval/rl_arithmetic@rl/pass@1": 0.375, "eval/rl_arithmetic@rl/pass@16": 0.625,
                     "eval/rl_arithmetic@rl/response_len": 60.5, "eval/rl_arithmetic@rl/n": 32})
  text = open(write_before_after(wd, "arithmetic", "sft", "rl")).read()
  assert "| metric | sft | rl |" in text and "| pass@1 | 0.25 | 0.375 |" in text
  assert "| response_len | 80 | 60.5 |" in text and "(32)" in text
  from llm_jax.eval.report import write_report  # pylint: disable=g-import-not-at-top
  assert "## RL on arithmetic: before and after" in open(write_report(wd)).read()
  assert json.load(open(os.path.join(wd, "eval.json")))["eval/rl_arithmetic@rl/n"] == 32
