"""Sample from a trained stage: `python -m llm_jax.sample --workdir=runs/nano --prompt="The meaning of"`."""

import sys

from absl import app, flags

flags.DEFINE_string("workdir", None, "Run folder holding checkpoints/ and tokenizer/.")
flags.DEFINE_string("stage", None, "Checkpoint stage (base, sft, rl); default: the latest trained.")
flags.DEFINE_multi_string("prompt", ["The"], "Prompt text; repeat the flag for a batch of prompts.")
flags.DEFINE_integer("max_new_tokens", 128, "Tokens to generate per prompt.")
flags.DEFINE_float("temperature", 0.8, "0 = greedy.")
flags.DEFINE_integer("top_k", 0, "Keep the k most likely tokens; 0 = off.")
flags.DEFINE_float("top_p", 0.95, "Nucleus sampling mass; 1 = off.")
flags.DEFINE_integer("num_samples", 1, "Samples per prompt.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from llm_jax.infer.engine import Engine, SamplingParams
  from llm_jax.infer.load import load_stage
  if not FLAGS.workdir:
    raise SystemExit("error: give --workdir=<run folder> (or --hf=<model folder> once imports land)")
  graphdef, params, cfg, tokenizer = load_stage(FLAGS.workdir, FLAGS.stage)
  engine = Engine(graphdef, params, cfg.model.max_seq_len)
  prompts = [p for p in FLAGS.prompt for _ in range(FLAGS.num_samples)]
  ids = [[tokenizer.bos_id] + tokenizer.encode(p.replace("\\n", "\n").replace("\\t", "\t")) for p in prompts]
  stop = tuple(i for i in (tokenizer.bos_id, tokenizer.eos_id) if i is not None)
  try:
    completions = engine.generate(ids, SamplingParams(
        max_new_tokens=FLAGS.max_new_tokens, temperature=FLAGS.temperature, top_k=FLAGS.top_k,
        top_p=FLAGS.top_p, stop_ids=stop, seed=FLAGS.seed))
  except ValueError as e:
    raise SystemExit(f"error: {e}")
  for prompt, completion in zip(prompts, completions):
    sys.stdout.write(f"--- {prompt!r}\n{prompt}{tokenizer.decode(completion)}\n")


if __name__ == "__main__":
  app.run(main)
