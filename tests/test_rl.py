"""The RL stage end to end on a tiny model: GRPO raises a toy reward within a few steps, writes metrics,
samples, eval.json, a summary and checkpoints, and resumes; rejection-sampling selection."""

import json
import os

import jax
import numpy as np
import pytest

from conftest import tiny_config
from llm_jax import parallel
from llm_jax.data import sft_pipeline
from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.tool_engine import Completion
from llm_jax.posttrain import rl
from llm_jax.posttrain.rejection import select
from llm_jax.posttrain.rl_step import make_logp_fn
from llm_jax.posttrain.rollouts import to_batch
from llm_jax.posttrain.sft import initial_params_from
from llm_jax.tasks.base import Example, Task
from llm_jax.tokenizer.bytes import ByteTokenizer
from llm_jax.tokenizer.chat import render_for_completion, stop_ids
from llm_jax.train import loop
from llm_jax.train import state as state_lib

TOK = ByteTokenizer()
NEW_TOKENS = 8


class EmitLow(Task):
  """Reward: the share of the reply's characters below '@' (digits, punctuation, control bytes): about
  64 of the 320 ids, so a random policy scores ~0.2."""

  name = "emit"

  def sample(self, rng: np.random.Generator) -> Example:
    return Example(prompt=({"role": "user", "content": "go"},), reference="0123", answer="", key=str(rng.random()))

  def reward(self, completion: str, example: Example) -> float:
    return min(sum(ch < "@" for ch in completion) / NEW_TOKENS, 1.0)


def numpy_init(abstract_params, shardings):
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda x, s: jax.device_put(
      (np.ones(x.shape) if len(x.shape) == 1 else rng.normal(0.0, 0.02, x.shape)).astype(np.float32), s),
      abstract_params, shardings)


def config(steps: int):
  c = tiny_config()
  c.model.num_layers = 1
  c.rl = rl.default_config()
  c.rl.update(dict(steps=steps, prompts_per_step=4, group_size=8, max_prompt_len=16, max_new_tokens=NEW_TOKENS,
                   epochs=2, minibatches=2, eval_every=0, eval_examples=4, eval_samples=8, eval_ks="1,8",
                   samples_every=4, checkpoint_every=100, tensorboard=False, truncation="none", track_kl=True))
  c.rl.optim.update(dict(lr=2e-2, warmup_steps=0))
  return c


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
  """A persistent compilation cache for this module: the resumed run builds new jitted functions, whose
  programs are then read back instead of compiled again (compiles dominate on CPU)."""
  keys = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
          "jax_persistent_cache_min_entry_size_bytes")
  old = {k: getattr(jax.config, k) for k in keys}
  for k, v in zip(keys, (str(tmp_path_factory.mktemp("jax_cache")), 0.0, 0)):
    jax.config.update(k, v)
  yield
  for k, v in old.items():
    jax.config.update(k, v)
  from jax._src import compilation_cache  # pylint: disable=g-import-not-at-top
  compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def run(tmp_path_factory, compile_cache):
  wd = str(tmp_path_factory.mktemp("rl"))
  rows = sft_pipeline.pack([[{"role": "user", "content": "go"}, {"role": "assistant", "content": "0"}]], TOK, 32)
  loop.train(config(steps=0), wd, "base", lambda b: sft_pipeline.make_iterator(rows, batch_size=b, seed=0),
             None, TOK.token_byte_lengths(), initial_params=numpy_init)
  first = rl.run_rl(config(steps=4), wd, TOK, task=EmitLow(), init_stage="base")
  summary = rl.run_rl(config(steps=8), wd, TOK, task=EmitLow(), init_stage="base")  # resumes at step 4
  return wd, first, summary


def test_grpo_raises_the_reward(run):
  wd, _, summary = run
  rows = [json.loads(line) for line in open(os.path.join(wd, "metrics", "rl.jsonl"))]
  steps = [r for r in rows if "rl/reward_mean" in r]
  assert [r["step"] for r in steps] == list(range(1, 9))
  assert steps[0]["rl/reward_mean"] < 0.3 and steps[-1]["rl/reward_mean"] > 0.8, [r["rl/reward_mean"] for r in steps]
  for key in ("rl/reward_std", "rl/zero_var_frac", "rl/response_len", "rl/kl", "rl/entropy", "rl/clip_frac",
              "rl/loss", "train/grad_norm", "train/lr"):
    assert key in steps[0], key
  assert steps[-1]["rl/zero_var_frac"] == 1 and "rl/loss" not in steps[-1]  # all groups dropped: no update
  assert steps[-1]["rl/kl"] > steps[0]["rl/kl"] >= 0.0  # k3 is non-negative and grows away from the start
  assert max(r.get("rl/clip_frac", 0) for r in steps) > 0  # 2 epochs x 2 minibatches: later updates are off-policy
  evals = [r for r in rows if "eval/emit/pass@1" in r]
  assert [r["step"] for r in evals] == [0, 4, 8] and evals[-1]["eval/emit/accuracy"] > evals[0]["eval/emit/accuracy"]
  assert summary["steps"] == 8 and summary["eval/emit/pass@8"] >= summary["eval/emit/pass@1"]
  assert summary["rl/reward_mean_first"] < 0.3 < 0.8 < summary["rl/reward_mean_last"]
  results = json.load(open(os.path.join(wd, "eval.json")))
  assert results["eval/rl_emit@rl/accuracy"] > results["eval/rl_emit@base/accuracy"]
  assert results["eval/rl_emit@rl/response_len"] > 0 and summary["init_stage"] == "base"


def test_samples_checkpoints_and_skip(run):
  wd, first, summary = run
  assert first["steps"] == 4
  for step in (1, 4, 8):
    text = open(os.path.join(wd, "samples", f"rl_step{step}.txt")).read()
    assert "### user: go" in text and "--- reward" in text
  ckpts = sorted(int(d) for d in os.listdir(os.path.join(wd, "checkpoints", "rl")) if d.isdigit())
  assert {4, 8} <= set(ckpts) and max(ckpts) == 8
  again = rl.run_rl(config(steps=8), wd, TOK, task=EmitLow(), init_stage="base")
  assert again == summary


def test_recomputed_logps_equal_the_samplers(run):
  """One jitted forward over prompt + completion gives the log-probs the KV-cache sampler drew from."""
  wd, c = run[0], config(steps=1)
  graphdef, abstract = state_lib.model_graphdef_and_shapes(c.model)
  shardings = parallel.tree_shardings(abstract, parallel.make_mesh(c.mesh), parallel.rules_dict(c.mesh))
  params = initial_params_from(c, wd, "rl")(abstract, shardings)
  engine = Engine(graphdef, params, c.model.max_seq_len)
  prompt = render_for_completion([{"role": "user", "content": "go"}], TOK)
  sampling = SamplingParams(max_new_tokens=NEW_TOKENS, temperature=1.0, stop_ids=stop_ids(TOK), seed=3)
  drawn, sampler_logps = [[] for _ in range(32)], [[] for _ in range(32)]
  for tokens_B, logits_BxV, active_B in engine.stream([prompt] * 32, sampling):
    logp_BxV = np.asarray(jax.nn.log_softmax(logits_BxV, axis=-1))
    for i in np.flatnonzero(active_B):
      drawn[i].append(int(tokens_B[i]))
      sampler_logps[i].append(float(logp_BxV[i, tokens_B[i]]))
  completions = [Completion(ids, [False] * len(ids), [], finished=False) for ids in drawn]
  batch = to_batch([prompt] * 32, completions, [1.0] * 32, 16 + NEW_TOKENS)
  logp_BxT, _ = jax.jit(make_logp_fn(graphdef))(params, batch)
  got = np.asarray(logp_BxT)[batch["mask"] > 0]
  np.testing.assert_allclose(got, np.concatenate(sampler_logps), atol=2e-4)


def test_rejection_keeps_correct_and_shortest():
  rewards = np.array([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0]], np.float32)
  lengths = np.array([[9, 1, 5, 5], [1, 1, 1, 1], [4, 4, 1, 1]])
  assert select(rewards, lengths, keep=1) == [[2], [], [0]]
  assert select(rewards, lengths, keep=2) == [[2, 3], [], [0, 1]]
  assert select(rewards * 0.5, lengths, keep=3, threshold=0.5) == [[2, 3, 0], [], [0, 1]]
