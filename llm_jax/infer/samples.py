"""Sample completions after a stage, written to workdir/samples/<stage>.txt."""

import os

from llm_jax.infer.engine import Engine, SamplingParams
from llm_jax.infer.load import load_stage


def write_samples(workdir: str, stage: str, sample_cfg, seed: int = 0) -> list[tuple[str, str]]:
  graphdef, params, cfg, tokenizer = load_stage(workdir, stage)
  engine = Engine(graphdef, params, cfg.model.max_seq_len)
  prompts = [[tokenizer.bos_id] + tokenizer.encode(p) for p in sample_cfg.prompts]
  params_ = SamplingParams(max_new_tokens=sample_cfg.max_new_tokens, temperature=sample_cfg.temperature,
                           top_k=sample_cfg.top_k, top_p=sample_cfg.top_p, stop_ids=(tokenizer.bos_id,), seed=seed)
  completions = engine.generate(prompts, params_)
  pairs = [(p, tokenizer.decode(c)) for p, c in zip(sample_cfg.prompts, completions)]
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  with open(os.path.join(workdir, "samples", f"{stage}.txt"), "w") as f:
    for prompt, completion in pairs:
      f.write(f"### {prompt!r}\n{prompt}{completion}\n\n")
  return pairs
