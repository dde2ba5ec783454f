"""Tokenizers of Hugging Face folders: loading one, its prompt conventions (BOS, stop ids), exporting ours."""

import json
import os
import shutil

from llm_jax.tokenizer import Tokenizer, load_tokenizer

OURS_SUBDIR = "llm_jax_tokenizer"  # where an export puts a tokenizer transformers cannot read
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                      "vocab.json", "merges.txt", "chat_template.jinja")
README = """# Exported from llm_jax

`config.json` and `model.safetensors` load with `transformers.AutoModelForCausalLM.from_pretrained(here)`.
{tokenizer}
"""
README_HF_TOKENIZER = "`transformers.AutoTokenizer.from_pretrained(here)` loads the tokenizer."
README_OURS = f"""The tokenizer is llm_jax's own (sentencepiece with exact round trips, tiktoken ranks or bytes), which
transformers does not express; it is in `{OURS_SUBDIR}/`. Load it with
`from llm_jax.tokenizer import load_tokenizer; tok = load_tokenizer("{OURS_SUBDIR}")`
(or everything with `llm_jax.hf.load_hf(here)`), and start each prompt with `tok.bos_id` as in training."""


def _read_json(path: str) -> dict:
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def load(directory: str) -> Tokenizer | None:
  """The folder's tokenizer, or one an export left in OURS_SUBDIR; None when there is none."""
  for where in (directory, os.path.join(directory, OURS_SUBDIR)):
    if os.path.isdir(where):
      try:
        return load_tokenizer(where)
      except FileNotFoundError:
        pass
  return None


def _adds_bos(directory: str, tokenizer: Tokenizer) -> bool:
  """Whether transformers prepends BOS: `add_bos_token` of tokenizer_config.json, else what the
  tokenizer.json post-processor does; sentencepiece and tiktoken models (Llama 2 / 3) prepend it."""
  config = _read_json(os.path.join(directory, "tokenizer_config.json"))
  if "add_bos_token" in config:
    return bool(config["add_bos_token"])
  path = os.path.join(directory, "tokenizer.json")
  if os.path.exists(path):
    import tokenizers  # pylint: disable=g-import-not-at-top
    tok = tokenizers.Tokenizer.from_file(path)
    with_special = tok.encode("a", add_special_tokens=True).ids
    try:
      return len(with_special) > len(tok.encode("a", add_special_tokens=False).ids) and (
          with_special[0] == tokenizer.bos_id)
    except KeyError:  # no BOS token at all
      return False
  return True


def prompt_conventions(directory: str, tokenizer: Tokenizer) -> tuple[bool, tuple[int, ...]]:
  """(prepend BOS?, stop ids) as transformers would use them for this folder's model."""
  stop = []
  for name in ("generation_config.json", "config.json"):
    eos = _read_json(os.path.join(directory, name)).get("eos_token_id")
    stop += eos if isinstance(eos, list) else [eos] if eos is not None else []
  if tokenizer.eos_id is not None:
    stop.append(tokenizer.eos_id)
  return _adds_bos(directory, tokenizer), tuple(dict.fromkeys(int(i) for i in stop))


def export(tokenizer_dir: str, out_dir: str) -> Tokenizer:
  """Put the tokenizer of `tokenizer_dir` into the HF folder `out_dir` and write a README saying how to
  load it. A Hugging Face tokenizer.json goes to the top, readable by AutoTokenizer; ours (which
  transformers cannot express exactly) is saved to OURS_SUBDIR."""
  if not os.path.exists(os.path.join(tokenizer_dir, "tokenizer.json")) and os.path.isdir(
      os.path.join(tokenizer_dir, OURS_SUBDIR)):
    tokenizer_dir = os.path.join(tokenizer_dir, OURS_SUBDIR)  # re-exporting an export
  tokenizer = load_tokenizer(tokenizer_dir)
  hf_class = _read_json(os.path.join(tokenizer_dir, "tokenizer_config.json")).get("tokenizer_class")
  if hf_class or os.path.exists(os.path.join(tokenizer_dir, "tokenizer.json")):
    for name in HF_TOKENIZER_FILES:
      if os.path.exists(os.path.join(tokenizer_dir, name)):
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(out_dir, name))
    config_path = os.path.join(out_dir, "tokenizer_config.json")
    config = _read_json(config_path)
    config.setdefault("tokenizer_class", "PreTrainedTokenizerFast")  # tokenizer.json exactly as it is
    for key in ("bos_token", "eos_token"):
      if getattr(tokenizer, key, None):
        config.setdefault(key, getattr(tokenizer, key))
    with open(config_path, "w") as f:
      json.dump(config, f, indent=1)
    note = README_HF_TOKENIZER
  else:
    tokenizer.save(os.path.join(out_dir, OURS_SUBDIR))
    note = README_OURS
  with open(os.path.join(out_dir, "README.md"), "w") as f:
    f.write(README.format(tokenizer=note))
  return tokenizer
