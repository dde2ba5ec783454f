"""Replies of a chat stage to a few questions, written to workdir/samples/<stage>.txt (shown in report.md)."""

import os

from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.load import load_stage
from llm_jax.tokenizer.chat import detect_template, render_for_completion, stop_ids


def write_chat_samples(workdir: str, stage: str, sample_cfg, seed: int = 0, system: str = "") -> list[tuple[str, str]]:
  """Ask each of sample_cfg.prompts as a one-turn conversation; returns (question, reply) pairs."""
  graphdef, params, cfg, tokenizer = load_stage(workdir, stage)
  template = detect_template(tokenizer)
  engine = Engine(graphdef, params, cfg.model.max_seq_len)
  head = [{"role": "system", "content": system}] if system else []
  prompts = [render_for_completion(head + [{"role": "user", "content": q}], tokenizer, template=template)
             for q in sample_cfg.prompts]
  params_ = SamplingParams(max_new_tokens=sample_cfg.max_new_tokens, temperature=sample_cfg.temperature,
                           top_k=sample_cfg.top_k, top_p=sample_cfg.top_p, stop_ids=stop_ids(tokenizer, template),
                           seed=seed)
  pairs = [(q, tokenizer.decode(c)) for q, c in zip(sample_cfg.prompts, engine.generate(prompts, params_))]
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  with open(os.path.join(workdir, "samples", f"{stage}.txt"), "w") as f:
    for question, reply in pairs:
      f.write(f"### user: {question}\n{reply}\n\n")
  return pairs
