"""Sample from a trained stage or a Hugging Face model.

  python -m llm_jax.sample --workdir=runs/nano --prompt="The meaning of"
  python -m llm_jax.sample --hf=/models/Llama-3.2-1B --temperature=0 --show_top=5 \\
      --prompt="English: cheese\\nFrench: fromage\\nEnglish: dog\\nFrench:"

`--show_top=K` prints, for every generated token, the model's K most likely next tokens with their
probabilities: the model as a simulator of documents, one token at a time.
"""

import sys

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Flags of this command (defined only when run, so other commands' modules import alongside)."""
  flags.DEFINE_string("workdir", None, "Run folder holding checkpoints/ and tokenizer/.")
  flags.DEFINE_string("stage", None, "Checkpoint stage (base, sft, rl); default: the latest trained.")
  flags.DEFINE_string("hf", None, "Hugging Face model folder or hub name (GPT-2, Llama); instead of --workdir.")
  flags.DEFINE_string("dtype", "float32", "Compute dtype for --hf models: float32 | bfloat16.")
  flags.DEFINE_multi_string("prompt", ["The"], "Prompt text (\\n, \\t escapes work); repeat the flag for a batch.")
  flags.DEFINE_integer("max_new_tokens", 128, "Tokens to generate per prompt.")
  flags.DEFINE_float("temperature", 0.8, "0 = greedy.")
  flags.DEFINE_integer("top_k", 0, "Keep the k most likely tokens; 0 = off.")
  flags.DEFINE_float("top_p", 0.95, "Nucleus sampling mass; 1 = off.")
  flags.DEFINE_integer("num_samples", 1, "Samples per prompt.")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  flags.DEFINE_integer("show_top", 0, "Print the top-K next-token candidates with probabilities; 0 = off.")


def top_candidates(logits_V: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """(probabilities float64[V] at temperature 1, ids of the k most likely, best first)."""
  z = logits_V.astype(np.float64)
  probs_V = np.exp(z - z.max())
  probs_V /= probs_V.sum()
  top = np.argpartition(-probs_V, min(k, len(probs_V) - 1))[:k]
  return probs_V, top[np.argsort(-probs_V[top])]


def generate(engine, tokenizer, prompts, sampling, add_bos: bool = True, show_top: int = 0):
  """[(completion ids, [(token, p, [(candidate, p), ...]) per generated token])] per prompt; tokens
  from `sampling.stop_ids` end a completion and are left out of it (but shown in the candidates)."""
  ids = [([tokenizer.bos_id] if add_bos else []) + tokenizer.encode(p) for p in prompts]
  out = [([], []) for _ in prompts]
  stop = set(sampling.stop_ids)
  for tokens_B, logits_BxV, active_B in engine.stream(ids, sampling):
    for i in np.flatnonzero(active_B):
      token = int(tokens_B[i])
      if show_top:
        probs_V, top = top_candidates(logits_BxV[i], show_top)
        out[i][1].append((token, float(probs_V[token]), [(int(j), float(probs_V[j])) for j in top]))
      if token not in stop:
        out[i][0].append(token)
  return out


def format_sample(tokenizer, prompt: str, completion: list[int], steps) -> str:
  lines = [f"--- {prompt!r}", prompt + tokenizer.decode(completion)]
  if steps:
    lines.append("    chosen token          p     | top candidates (p at temperature 1)")
  for n, (token, p, top) in enumerate(steps):
    cands = "  ".join(f"{tokenizer.decode([j])!r} {q:.3f}" for j, q in top)
    lines.append(f"{n:3d} {tokenizer.decode([token])!r:<18} {p:.3f} | {cands}")
  return "\n".join(lines) + "\n"


def load(workdir: str | None, stage: str | None, hf: str | None, dtype: str):
  """(engine, tokenizer, prepend BOS?, stop ids) for a workdir stage or a Hugging Face model."""
  from llm_jax.infer.engine import Engine  # pylint: disable=g-import-not-at-top
  if bool(workdir) == bool(hf):
    raise ValueError("give exactly one of --workdir=<run folder> or --hf=<model folder or hub name>")
  if hf:
    from llm_jax import hf as hf_lib  # pylint: disable=g-import-not-at-top
    directory = hf_lib.resolve(hf)
    graphdef, params, model_cfg, tokenizer = hf_lib.load_hf(directory, dtype=dtype)
    if tokenizer is None:
      raise ValueError(f"{hf!r} has no tokenizer files (tokenizer.json or tokenizer.model); add them")
    add_bos, stop = hf_lib.prompt_conventions(directory, tokenizer)
    return Engine(graphdef, params, model_cfg.max_seq_len), tokenizer, add_bos, stop
  from llm_jax.infer.load import load_stage  # pylint: disable=g-import-not-at-top
  graphdef, params, cfg, tokenizer = load_stage(workdir, stage)
  stop = tuple(i for i in (tokenizer.bos_id, tokenizer.eos_id) if i is not None)
  return Engine(graphdef, params, cfg.model.max_seq_len), tokenizer, True, stop


def main(argv):
  del argv
  from llm_jax.infer.engine import SamplingParams  # pylint: disable=g-import-not-at-top
  try:
    engine, tokenizer, add_bos, stop = load(FLAGS.workdir, FLAGS.stage, FLAGS.hf, FLAGS.dtype)
    prompts = [p.replace("\\n", "\n").replace("\\t", "\t") for p in FLAGS.prompt for _ in range(FLAGS.num_samples)]
    results = generate(engine, tokenizer, prompts, SamplingParams(
        max_new_tokens=FLAGS.max_new_tokens, temperature=FLAGS.temperature, top_k=FLAGS.top_k,
        top_p=FLAGS.top_p, stop_ids=stop, seed=FLAGS.seed), add_bos, FLAGS.show_top)
  except (ValueError, FileNotFoundError, RuntimeError) as e:
    raise SystemExit(f"error: {e}")
  for prompt, (completion, steps) in zip(prompts, results):
    sys.stdout.write(format_sample(tokenizer, prompt, completion, steps))


if __name__ == "__main__":
  define_flags()
  app.run(main)
