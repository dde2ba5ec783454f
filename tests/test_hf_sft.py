"""Fine-tuning an imported Hugging Face model (`--config.init.hf=...`) with its own chat template."""

import json
import os

import ml_collections
import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from conftest import tiny_config
from llm_jax.infer.load import load_stage
from llm_jax.posttrain.sft import finetune, start_from_hf
from llm_jax.tokenizer.chat import detect_template, render

CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CONVS = [[{"role": "user", "content": f"Say {w}"}, {"role": "assistant", "content": f"{w}!"}]
         for w in ("hello", "world", "cheese", "dog")]


def chatml_llama(directory) -> None:
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  texts = ["user assistant Say hello world cheese dog !\n"] * 4
  tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=CHATML, show_progress=False,
                                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  tok.save(str(directory / "tokenizer.json"))
  (directory / "tokenizer_config.json").write_text(json.dumps(
      {"bos_token": None, "eos_token": "<|im_end|>", "tokenizer_class": "PreTrainedTokenizerFast"}))
  torch.manual_seed(0)
  config = transformers.LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                                    num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                    max_position_embeddings=64, tie_word_embeddings=True)
  transformers.LlamaForCausalLM(config).save_pretrained(str(directory), safe_serialization=True)


def test_sft_starts_from_an_imported_model_and_uses_its_template(tmp_path):
  model_dir = tmp_path / "hf"
  model_dir.mkdir()
  chatml_llama(model_dir)
  cfg = tiny_config(steps=12, batch_size=4, seq_len=32, lr=1e-2, eval_every=0, log_every=4)
  cfg.init = ml_collections.ConfigDict(dict(stage="base", hf=str(model_dir)))
  workdir = str(tmp_path / "run")
  cfg, tokenizer, initial = start_from_hf(cfg, workdir)
  assert cfg.model.norm == "rmsnorm" and cfg.model.num_kv_heads == 1
  assert os.path.isdir(os.path.join(workdir, "tokenizer"))
  template = detect_template(tokenizer)
  assert template == "chatml"
  ids, mask = render(CONVS[0], tokenizer, template=template)
  assert tokenizer.special_id("<|im_start|>") in ids and sum(mask) > 0
  summary = finetune(cfg, workdir, tokenizer, CONVS * 8, init_stage="base", template=template,
                     initial_params=initial)
  rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics", "sft.jsonl"))]
  assert rows[-1]["train/loss"] < rows[0]["train/loss"] and np.isfinite(summary["train/loss"])
  _, _, saved_cfg, saved_tok = load_stage(workdir, "sft")  # the stage reloads with the imported shape
  assert saved_cfg.model.vocab_size == cfg.model.vocab_size and saved_tok.vocab_size == tokenizer.vocab_size
