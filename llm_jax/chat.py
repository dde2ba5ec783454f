"""Talk to a trained stage: `python -m llm_jax.chat --workdir=runs/nano [--stage=sft] [--system="..."]`.

Reads one user message per line from stdin (so a conversation can be piped in) and streams the reply
token by token. Commands: /reset clears the history, /quit leaves. When the history no longer fits the
context, the oldest exchanges are dropped (and you are told); a message that alone does not fit is
refused with a hint to shorten it.
"""

import dataclasses
import sys
from collections.abc import Callable, Iterable

from absl import app, flags, logging

from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.tool_engine import completion_parts
from llm_jax.tokenizer.chat import render_for_completion, stop_ids

flags.DEFINE_string("workdir", None, "Run folder holding checkpoints/ and tokenizer/.")
flags.DEFINE_string("stage", None, "Checkpoint stage (sft, rl, base); default: the latest trained.")
flags.DEFINE_string("system", "", "System prompt placed before the conversation.")
flags.DEFINE_string("template", "", "Chat template (llm_jax, chatml, llama3); default: the tokenizer's.")
flags.DEFINE_float("temperature", 0.7, "0 = greedy.")
flags.DEFINE_integer("top_k", 0, "Keep the k most likely tokens; 0 = off.")
flags.DEFINE_float("top_p", 0.95, "Nucleus sampling mass; 1 = off.")
flags.DEFINE_integer("max_new_tokens", 256, "Longest reply, in tokens.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_list("tools", [], "Tools the model may call: python, search.")
flags.DEFINE_string("search.corpus", "", "Source spec the search tool searches, e.g. files:notes/*.txt.")
FLAGS = flags.FLAGS


class ChatSession:
  """A multi-turn conversation with one model; `reply` streams an answer through `write`."""

  def __init__(self, engine: Engine, tokenizer, sampling: SamplingParams, *, system: str = "",
               template: str = "llm_jax", tools: bool = False):
    self.engine, self.tokenizer, self.template, self.tools = engine, tokenizer, template, tools
    self.sampling = dataclasses.replace(sampling, stop_ids=stop_ids(tokenizer, template))
    self.system, self.history, self.turns = system, [], 0
    # room a reply needs: all of max_new_tokens, up to a quarter of the context
    self.reserve = max(1, min(sampling.max_new_tokens, engine.max_seq_len // 4))

  def reset(self) -> None:
    self.history = []

  def _render(self, messages: list[dict]) -> list[int]:
    system = [{"role": "system", "content": self.system}] if self.system.strip() else []
    return render_for_completion(system + messages, self.tokenizer, template=self.template)

  def _prompt(self, write: Callable[[str], None]) -> list[int] | None:
    """Prompt ids of the history, dropping the oldest exchanges while it does not fit (None, with the
    history untouched, when the latest message alone does not fit)."""
    room = self.engine.max_seq_len - self.reserve
    if len(self._render(self.history[-1:])) > room:
      return None
    while len(ids := self._render(self.history)) > room:
      self.history = self.history[2:]
      write("[context full: dropped the oldest exchange; /reset to start over]\n")
    return ids

  def reply(self, text: str, write: Callable[[str], None]) -> str:
    """Answer `text` given the history; returns the reply ('' if none was produced)."""
    self.history.append({"role": "user", "content": text})
    prompt = self._prompt(write)
    if prompt is None:
      self.history.pop()
      write(f"[message too long for the model's context of {self.engine.max_seq_len} tokens; shorten it]\n")
      return ""
    stop, ids, shown, finished = set(self.sampling.stop_ids), [], "", False
    params = dataclasses.replace(self.sampling, seed=self.sampling.seed + self.turns)
    self.turns += 1
    for tokens, _, active, *_ in self.engine.stream([prompt], params):  # ToolEngine adds a forced mask
      if not active[0] or int(tokens[0]) in stop:
        finished = True
        break
      ids.append(int(tokens[0]))
      text_so_far = self.tokenizer.decode(ids)
      if not text_so_far.endswith("\ufffd"):  # wait for the rest of a multi-byte character
        write(text_so_far[len(shown):])
        shown = text_so_far
    reply = self.tokenizer.decode(ids)
    write(reply[len(shown):] + "\n")
    if not finished:
      write(f"[reply cut at {len(ids)} tokens]\n")
    if reply.strip():  # with tools, keep calls and outputs as parts so the next turn renders them right
      content = completion_parts(self.tokenizer, ids) if self.tools else reply
      self.history.append({"role": "assistant", "content": content})
    else:
      self.history.pop()  # keep the history a valid conversation
    return reply


def run(session: ChatSession, lines: Iterable[str], write: Callable[[str], None], prompt: str = "") -> None:
  """Feed user lines to the session until /quit or the end of input."""
  write(prompt)
  for line in lines:
    text = line.strip()
    if text == "/quit":
      break
    if text == "/reset":
      session.reset()
      write("[history cleared]\n")
    elif text:
      session.reply(text, write)
    write(prompt)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # keep the conversation readable
  from llm_jax.infer.load import load_stage  # pylint: disable=g-import-not-at-top
  from llm_jax.tokenizer.chat import detect_template  # pylint: disable=g-import-not-at-top
  if not FLAGS.workdir:
    raise SystemExit("error: give --workdir=<run folder> (a run with a fine-tuned stage, e.g. sft)")
  try:
    graphdef, params, cfg, tokenizer = load_stage(FLAGS.workdir, FLAGS.stage)
    template = FLAGS.template or detect_template(tokenizer)
  except (FileNotFoundError, ValueError) as e:
    raise SystemExit(f"error: {e}")
  sampling = SamplingParams(max_new_tokens=FLAGS.max_new_tokens, temperature=FLAGS.temperature,
                            top_k=FLAGS.top_k, top_p=FLAGS.top_p, seed=FLAGS.seed)
  engine = Engine(graphdef, params, cfg.model.max_seq_len)
  if FLAGS.tools:
    from llm_jax.infer.tool_engine import ToolEngine  # pylint: disable=g-import-not-at-top
    from llm_jax.infer.tools import make_tools  # pylint: disable=g-import-not-at-top
    engine = ToolEngine(engine, tokenizer, make_tools(FLAGS.tools, FLAGS["search.corpus"].value))
  session = ChatSession(engine, tokenizer, sampling, system=FLAGS.system, template=template,
                        tools=bool(FLAGS.tools))

  def write(s: str) -> None:
    sys.stdout.write(s)
    sys.stdout.flush()

  if sys.stdin.isatty():
    write("Type a message; /reset clears the history, /quit leaves.\n")
  run(session, sys.stdin, write, prompt="> " if sys.stdin.isatty() else "")


if __name__ == "__main__":
  app.run(main)
