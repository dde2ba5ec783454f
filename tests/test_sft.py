"""End to end on a tiny model: fine-tune with loop.train from a base checkpoint until it has memorised a
few conversations, then answer them greedily through the Engine, chat through stdin-style lines, and
agree between two loss paths (packed SFT batches vs per-request log-likelihoods)."""

import io
import json
import os

import jax
import numpy as np
import pytest

from conftest import tiny_config
from llm_jax import chat
from llm_jax.data import sft_pipeline
from llm_jax.eval import loss, multiple_choice
from llm_jax.eval.report import write_report
from llm_jax.eval.run import default_config as eval_config
from llm_jax.eval.run import run_eval
from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.load import load_stage
from llm_jax.posttrain.prerequisites import require_stage
from llm_jax.posttrain.sft import finetune
from llm_jax.tokenizer.bytes import ByteTokenizer
from llm_jax.tokenizer.chat import render, render_for_completion, stop_ids
from llm_jax.train import loop

TOK = ByteTokenizer()
PAIRS = [("hi", "hello!"), ("2+2?", "4"), ("name?", "Nano"), ("sky?", "blue")]
CONVS = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in PAIRS]
TWO_TURNS = [{"role": "system", "content": "be kind"}, *CONVS[0], *CONVS[1]]
SEQ = 64


def config(**train):
  c = tiny_config(seq_len=SEQ, **train)
  c.model.max_seq_len = SEQ
  c.checkpoint.every_steps = 1000
  return c


def numpy_init(abstract_params, shardings):
  """Random N(0, 0.02) matrices and unit norm scales, drawn with numpy: the same role as the model's own
  initialiser without compiling its random number generators (seconds on a busy CPU)."""
  rng = np.random.default_rng(0)

  def one(x, sharding):
    value = np.ones(x.shape) if len(x.shape) == 1 else rng.normal(0.0, 0.02, x.shape)
    return jax.device_put(value.astype(np.float32), sharding)

  return jax.tree.map(one, abstract_params, shardings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """(workdir, Engine, graphdef, params, summary) of a tiny model fine-tuned on CONVS."""
  wd = str(tmp_path_factory.mktemp("sft"))
  TOK.save(os.path.join(wd, "tokenizer"))
  # the "base" stage: loop.train with 0 steps saves its initial parameters
  rows = sft_pipeline.pack(CONVS, TOK, SEQ)
  loop.train(config(steps=0), wd, "base", lambda b: sft_pipeline.make_iterator(rows, batch_size=b, seed=0), None,
             TOK.token_byte_lengths(), initial_params=numpy_init)
  summary = finetune(config(steps=60, lr=1e-2, warmup_steps=5, log_every=20, eval_every=60, batch_size=4), wd, TOK,
                     CONVS * 6 + [TWO_TURNS] * 4, CONVS, init_stage="base", stage="sft")
  graphdef, params, cfg, tokenizer = load_stage(wd, "sft")
  assert tokenizer.vocab_size == TOK.vocab_size
  return wd, Engine(graphdef, params, cfg.model.max_seq_len), graphdef, params, summary


def test_finetune_memorises_and_answers(trained):
  wd, engine, _, _, summary = trained
  assert summary["steps"] == 60 and summary["val/loss"] < 0.3
  with open(os.path.join(wd, "checkpoints", "sft", "data.json")) as f:
    assert json.load(f)["train"]["conversations"] == len(CONVS) * 6 + 4
  greedy = SamplingParams(max_new_tokens=48, temperature=0.0, stop_ids=stop_ids(TOK))
  replies = [engine.generate([render_for_completion(c, TOK)], greedy)[0] for c in CONVS]  # batch 1, as chat
  assert [TOK.decode(r) for r in replies] == [a for _, a in PAIRS]


def test_chat_session_streams_resets_and_quits(trained):
  _, engine, _, _, _ = trained
  out = io.StringIO()
  session = chat.ChatSession(engine, TOK, SamplingParams(max_new_tokens=48, temperature=0.0))
  chat.run(session, ["hi\n", "/reset\n", "sky?\n", "x" * 80 + "\n", "/quit\n", "name?\n"], out.write)
  assert out.getvalue() == ("hello!\n[history cleared]\nblue\n[message too long for the model's context of 64 "
                            "tokens; shorten it]\n")  # nothing after /quit
  assert session.history == CONVS[3]
  session.reset()
  session.system = "be kind"  # the multi-turn conversation it was trained on, with its system prompt
  assert [session.reply(q, out.write) for q in ("hi", "2+2?")] == ["hello!", "4"]


class EchoEngine:
  """Stands in for Engine: replies "ok" then <|assistant_end|>, or never stops when `endless`."""

  def __init__(self, max_seq_len, endless=False):
    self.max_seq_len, self.endless, self.prompts = max_seq_len, endless, []

  def stream(self, prompts, params):
    self.prompts.append(prompts[0])
    reply = TOK.encode("ok" * 50 if self.endless else "ok") + [TOK.special_id("<|assistant_end|>")]
    budget = min(params.max_new_tokens, self.max_seq_len - len(prompts[0]))
    for t in reply[:budget]:
      yield np.array([t]), None, np.array([True])


def test_chat_context_full_drops_oldest_exchanges():
  engine, out = EchoEngine(max_seq_len=48), io.StringIO()
  session = chat.ChatSession(engine, TOK, SamplingParams(max_new_tokens=8))
  for q in ("first", "second", "third", "fourth"):
    assert session.reply(q, out.write) == "ok"
  assert "[context full: dropped the oldest exchange" in out.getvalue()
  assert all(len(p) + 8 <= 48 for p in engine.prompts)
  assert session.history[-2:] == [{"role": "user", "content": "fourth"}, {"role": "assistant", "content": "ok"}]
  assert session.history[0]["content"] != "first"
  before = list(session.history)
  session.reply("y" * 60, out.write)
  assert session.history == before and out.getvalue().endswith("shorten it]\n")
  long_reply = chat.ChatSession(EchoEngine(48, endless=True), TOK, SamplingParams(max_new_tokens=5))
  assert long_reply.reply("go", out.write) == "okoko" and out.getvalue().endswith("[reply cut at 5 tokens]\n")


def test_loss_paths_agree(trained):
  _, _, graphdef, params, _ = trained
  conv_loss = loss.conversations_loss(graphdef, params, CONVS, TOK, seq_len=SEQ, batch_size=4)
  loglik = multiple_choice.make_loglikelihood(graphdef, params, SEQ, batch_size=4)
  requests = []
  for c in CONVS:
    ids, mask = render(c, TOK)
    start = mask.index(1)
    requests.append((ids[:start], ids[start:]))
  total = -sum(loglik(requests))
  assert conv_loss["tokens"] == sum(len(r) for _, r in requests)
  assert total / conv_loss["tokens"] == pytest.approx(conv_loss["loss"], rel=1e-4)
  assert conv_loss["loss"] < 0.3 and conv_loss["bpb"] > 0


def test_run_eval_multiple_choice_file(trained, tmp_path):
  wd, _, graphdef, params, _ = trained
  path = tmp_path / "tiny_mc.jsonl"
  items = [{"context": f"Q{i}:", "choices": [" yes", " no"], "answer": i % 2} for i in range(4)]
  path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
  cfg = config()
  cfg.eval = eval_config()
  cfg.eval.update(dict(tasks=f"mc:{path},order:{path}", batch_size=4, order_shuffles=3, order_shard_size=2))
  got = run_eval(cfg, wd, stage="sft", model=(graphdef, params, config(), TOK))
  assert set(got) >= {"eval/tiny_mc/acc", "eval/tiny_mc/acc_norm", "eval/tiny_mc/order_p_value",
                      "eval/tiny_mc/choice_gap"}
  with open(os.path.join(wd, "eval.json")) as f:
    assert json.load(f)["eval/tiny_mc/n"] == 4
  with open(write_report(wd)) as f:
    report = f.read()
  assert "| tiny_mc |" in report and f"- train: {len(CONVS) * 6 + 4} conversations in" in report


def test_missing_or_mismatched_base(trained, tmp_path):
  wd = trained[0]
  with pytest.raises(FileNotFoundError, match="no trained stage 'nope'"):
    finetune(config(), wd, TOK, CONVS, init_stage="nope", stage="x")
  wide = config()
  wide.model.d_model = 64
  with pytest.raises(ValueError, match="d_model"):
    finetune(wide, wd, TOK, CONVS, init_stage="base", stage="x")
  with pytest.raises(SystemExit, match="configs/nano.py"):
    require_stage(str(tmp_path), "base")
