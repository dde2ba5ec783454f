"""Importing tiny random Hugging Face GPT-2 and Llama models: logits, greedy generations, tokenizers,
`--show_top`, and exporting the imported model back. Everything is built locally; nothing downloads."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import torch  # noqa: E402  (test extra)
import transformers  # noqa: E402  (test extra)
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

from llm_jax import hf, sample  # noqa: E402
from llm_jax.infer.engine import Engine, SamplingParams  # noqa: E402
from llm_jax.tokenizer.tiktoken_bpe import LLAMA3_PATTERN  # noqa: E402

V = 96
TEXTS = ["English: cheese\nFrench: fromage\nEnglish: dog\nFrench: chien\n",
         "the quick brown fox jumps over the lazy dog, 12 times!"] * 4
PROMPTS = ["English: cheese\nFrench:", "the lazy"]
LLAMA3_SCALING = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                      original_max_position_embeddings=512)


def _llama(**kw):
  base = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, bos_token_id=0,
              eos_token_id=1, tie_word_embeddings=False)
  return transformers.LlamaConfig(**(base | kw))


def _gpt2(**kw):
  base = dict(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0, eos_token_id=0)
  return transformers.GPT2Config(**(base | kw))


# Two layers where the layer loop matters, one elsewhere: JAX compile time grows with depth.
CONFIGS = {  # name -> (HF config, tokenizer style or None)
    "gpt2_tied": (lambda: _gpt2(), "gpt2"),
    "gpt2_untied": (lambda: _gpt2(n_layer=1, n_embd=48, n_head=3, n_inner=80, tie_word_embeddings=False,
                                  layer_norm_epsilon=1e-6), None),
    "llama2_mha": (lambda: _llama(num_key_value_heads=4, rope_theta=10000.0, rms_norm_eps=1e-6), None),
    "llama31_gqa": (lambda: _llama(num_hidden_layers=1, rope_theta=10000.0, rope_scaling=dict(LLAMA3_SCALING)),
                    "llama3"),
    "llama32_tied": (lambda: _llama(num_hidden_layers=1, hidden_size=48, num_key_value_heads=1, head_dim=16,
                                    tie_word_embeddings=True, rope_theta=500000.0,
                                    rope_scaling=dict(LLAMA3_SCALING, factor=32.0)), None),
}


def write_tokenizer(directory, style: str) -> None:
  """A byte-level BPE tokenizer.json (GPT-2 style, or Llama 3 style with a BOS post-processor)."""
  tok = Tokenizer(models.BPE())
  if style == "llama3":
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    specials, config = ["<|begin_of_text|>", "<|end_of_text|>"], {
        "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "tokenizer_class": "PreTrainedTokenizerFast"}
  else:
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials, config = ["<|endoftext|>"], {
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "tokenizer_class": "GPT2Tokenizer"}
  tok.decoder = decoders.ByteLevel()
  tok.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=V, special_tokens=specials, show_progress=False))
  if style == "llama3":
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)])
  else:
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
  assert tok.get_vocab_size() <= V
  tok.save(str(directory / "tokenizer.json"))
  (directory / "tokenizer_config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """name -> (folder, torch model): random weights, every parameter perturbed (norms, biases too)."""
  out = {}
  for seed, (name, (make_config, tokenizer)) in enumerate(CONFIGS.items()):
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(make_config()).eval()
    with torch.no_grad():
      for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.1)
    directory = tmp_path_factory.mktemp(name)
    model.save_pretrained(str(directory), safe_serialization=True)
    if tokenizer:
      write_tokenizer(directory, tokenizer)
    out[name] = (directory, model)
  return out


@pytest.fixture(scope="module")
def imported(built):
  """name -> (graphdef, params, cfg, tokenizer), imported once per model."""
  return {name: hf.load_hf(str(directory)) for name, (directory, _) in built.items()}


def torch_logits(model, ids) -> np.ndarray:
  with torch.no_grad():
    return model(torch.tensor(np.asarray(ids), dtype=torch.long)).logits.numpy()


def _forward(graphdef, cached, params, ids_BxT):
  """Logits of the whole sequence, or through the KV cache in two chunks (prefill, then more)."""
  model = nnx.merge(graphdef, params)
  B, T = ids_BxT.shape
  positions_BxT = jnp.broadcast_to(jnp.arange(T), (B, T))
  if not cached:
    return model(ids_BxT, positions_BxT)[0]
  cache, half = model.init_cache(B, T), T // 2
  first, cache = model(ids_BxT[:, :half], positions_BxT[:, :half], cache=cache)
  second, _ = model(ids_BxT[:, half:], positions_BxT[:, half:], cache=cache)
  return jnp.concatenate([first, second], axis=1)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_match(name, built, imported):
  """GPT-2 goes through the KV cache (learned positions at offsets); the Llama cache path is covered by
  the greedy generation test."""
  graphdef, params, _, _ = imported[name]
  ids_BxT = np.random.RandomState(0).randint(0, V, (2, 24)).astype(np.int32)
  ours = jax.jit(_forward, static_argnums=(0, 1))(graphdef, name == "gpt2_tied", params, ids_BxT)
  ref = torch_logits(built[name][1], ids_BxT)
  diff = float(np.abs(np.asarray(ours) - ref).max())
  print(f"{name}: max |logit diff| = {diff:.2e} (logits up to {np.abs(ref).max():.1f})")
  assert np.abs(ref).max() > 1.0  # the comparison is not of near-zero numbers
  assert diff < 1e-4


@pytest.fixture(scope="module")
def engines(imported):
  """One Engine (its compilations dominate the test time); the cached path of the others is checked
  by test_logits_match."""
  graphdef, params, cfg, _ = imported["llama31_gqa"]
  return {"llama31_gqa": Engine(graphdef, params, cfg.max_seq_len)}


@pytest.mark.parametrize("name", ["llama31_gqa"])
def test_greedy_generation_matches_transformers(name, built, imported, engines):
  directory, model = built[name]
  tokenizer = imported[name][3]
  add_bos, stop = hf.prompt_conventions(str(directory), tokenizer)
  assert add_bos == (name == "llama31_gqa")
  prompts = [([tokenizer.bos_id] if add_bos else []) + tokenizer.encode(p) for p in PROMPTS]
  ours = engines[name].generate(prompts, SamplingParams(max_new_tokens=12, temperature=0.0, stop_ids=stop),
                                include_stop=True)
  for prompt, completion in zip(prompts, ours):
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         do_sample=False, max_new_tokens=12)
    assert completion == out[0, len(prompt):].tolist()


def test_show_top(built, imported, engines):
  directory, model = built["llama31_gqa"]
  engine, tokenizer = engines["llama31_gqa"], imported["llama31_gqa"][3]
  params = SamplingParams(max_new_tokens=12, temperature=0.0)
  [(completion, steps), _] = sample.generate(engine, tokenizer, PROMPTS, params, True, show_top=3)
  prompts = [[tokenizer.bos_id] + tokenizer.encode(p) for p in PROMPTS]
  assert completion == engine.generate(prompts, params)[0]
  for token, p, top in steps:
    assert len(top) == 3 and top[0] == (token, p) and top[0][1] >= top[1][1] >= top[2][1]
  logits = torch_logits(model, prompts[:1])[0, -1]
  probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
  np.testing.assert_allclose([q for _, q in steps[0][2]], np.sort(probs)[::-1][:3], atol=1e-5)
  text = sample.format_sample(tokenizer, PROMPTS[0], completion, steps)
  assert text.startswith("--- ") and text.count(" | ") == len(steps) + 1


@pytest.mark.parametrize("name", ["gpt2_tied", "llama31_gqa"])
def test_tokenizer_parity_with_transformers(name, built, imported):
  directory = str(built[name][0])
  tokenizer = imported[name][3]
  add_bos, _ = hf.prompt_conventions(directory, tokenizer)
  reference = transformers.AutoTokenizer.from_pretrained(directory)
  for text in TEXTS[:2] + PROMPTS:
    ids = ([tokenizer.bos_id] if add_bos else []) + tokenizer.encode(text)
    assert ids == reference(text).input_ids
    assert tokenizer.decode(ids) == reference.decode(ids)


@pytest.mark.parametrize("name", ["gpt2_untied", "llama31_gqa", "llama32_tied"])
def test_export_of_imported_model(name, built, imported, tmp_path):
  directory, model = built[name]
  graphdef, params, cfg, _ = imported[name]
  tokenizer_dir = str(directory) if CONFIGS[name][1] else None
  hf.save_hf(graphdef, params, cfg, tokenizer_dir, str(tmp_path))
  again = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path)).eval()
  ids = np.random.RandomState(1).randint(0, V, (1, 20))
  np.testing.assert_allclose(torch_logits(again, ids), torch_logits(model, ids), atol=1e-6)
  if tokenizer_dir:
    reference = transformers.AutoTokenizer.from_pretrained(str(directory))
    exported = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert exported(TEXTS[0]).input_ids == reference(TEXTS[0]).input_ids
