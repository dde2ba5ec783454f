"""Tool use: fine-tune the nano base model on SFT data mixed with tool-use conversations, then answer
the same held-out questions with tools off and on (experiments/tools.py).

Run configs/nano.py first (tokenizer and checkpoints/base), then, in the same workdir:
  python -m llm_jax.main --config=configs/tools.py --workdir=runs/nano
  python -m llm_jax.chat --workdir=runs/nano --stage=sft_tools --tools=python,search \
      --search.corpus='files:runs/nano/data/tool_facts/*.txt;clean=none'
Preset: tiny (seconds, on configs/nano.py:tiny).
"""

import importlib.util
import os

from llm_jax.eval import tools as tools_eval
from llm_jax.tasks import tool_use


def sft_config(preset: str = ""):
  """configs/sft.py's config (the SFT mixture, training and eval settings this builds on)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sft.py")
  spec = importlib.util.spec_from_file_location("llm_jax_sft_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def get_config(preset: str = ""):
  if preset not in ("", "tiny"):
    raise ValueError(f"unknown tools preset {preset!r}; use tiny or nothing")
  c = sft_config(preset)
  c.experiment = "experiments/tools.py"
  c.sft.stage = "sft_tools"  # checkpoint of the tool-using assistant
  c.tasks.tool_use = tool_use.default_config()  # kinds, number sizes, the search collection
  c.tools = tools_eval.default_config()  # tools, limits, the off/on evaluation and the mixture weight
  c.eval.stage = "sft_tools"
  c.sample.prompts = ("How many 'r' are in strawberry?", "What is 48213 * 9127?", "How long is the Zorvel River?")
  # letter counting is taught only the tool way (spell-and-count answers to the same questions in the
  # mixture made the model answer them without the tool)
  c.tasks.spelling.kind = "spell"
  if not preset:  # search results and long strings make conversations of up to ~400 tokens: 512-token rows
    c.train.update(dict(steps=450, batch_size=8, seq_len=512))
    # operands and strings a 4-layer model copies reliably into a call: still far past what it computes
    c.tasks.tool_use.update(dict(min_digits=4, max_digits=7, min_chars=20, max_chars=60))
  if preset == "tiny":  # a 128-token context: short tool outputs and few examples
    c.tasks.tool_use.update(dict(max_digits=6, max_chars=40, num_entities=30, search_k=1, search_tokens=40))
    c.tools.update(dict(num_examples=4, max_new_tokens=48, max_output_tokens=24, batch_size=4))
  return c
