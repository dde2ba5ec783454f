"""Export a trained stage (or re-export an HF model) as a Hugging Face folder transformers loads.

  python -m llm_jax.convert --workdir=runs/nano [--stage=sft] --to-hf=/tmp/nano_hf
  python -m llm_jax.convert --hf=/models/gpt2 --to-hf=/tmp/gpt2_copy --dtype=bfloat16

Then `AutoModelForCausalLM.from_pretrained("/tmp/nano_hf")`; see the folder's README.md for the tokenizer.
"""

import os

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Flags of this command (defined only when run, so other commands' modules import alongside)."""
  flags.DEFINE_string("workdir", None, "Run folder holding checkpoints/ and tokenizer/.")
  flags.DEFINE_string("stage", None, "Checkpoint stage (base, sft, rl); default: the latest trained.")
  flags.DEFINE_integer("step", None, "Checkpoint step; default: the latest.")
  flags.DEFINE_string("hf", None, "Instead of --workdir: a Hugging Face folder or hub name to re-export.")
  flags.DEFINE_string("to_hf", None, "Output folder (config.json, model.safetensors, tokenizer files).")
  flags.DEFINE_alias("to-hf", "to_hf")
  flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Stored weight type.")


def convert(to_hf: str, workdir: str | None = None, stage: str | None = None, step: int | None = None,
            hf_model: str | None = None, dtype: str = "float32") -> str:
  """Write the model of a workdir stage, or of an HF folder / hub name, to the HF folder `to_hf`."""
  from llm_jax import hf  # pylint: disable=g-import-not-at-top
  if not to_hf or bool(workdir) == bool(hf_model):
    raise ValueError("give --to-hf=<output folder> and exactly one of --workdir=<run> or --hf=<model>")
  if hf_model:
    directory = hf.resolve(hf_model)
    graphdef, params, model_cfg, tokenizer = hf.load_hf(directory)
    tokenizer_dir = directory if tokenizer is not None else None
  else:
    from llm_jax.infer.load import load_stage  # pylint: disable=g-import-not-at-top
    graphdef, params, cfg, _ = load_stage(workdir, stage, step)
    model_cfg, tokenizer_dir = cfg.model, os.path.join(workdir, "tokenizer")
  return hf.save_hf(graphdef, params, model_cfg, tokenizer_dir, to_hf, dtype=dtype)


def main(argv):
  del argv
  try:
    out = convert(FLAGS.to_hf, FLAGS.workdir, FLAGS.stage, FLAGS.step, FLAGS.hf, FLAGS.dtype)
  except (ValueError, FileNotFoundError, RuntimeError) as e:
    raise SystemExit(f"error: {e}")
  print(f"wrote {out}: AutoModelForCausalLM.from_pretrained({out!r}); see its README.md")


if __name__ == "__main__":
  define_flags()
  app.run(main)
