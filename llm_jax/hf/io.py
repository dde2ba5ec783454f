"""Hugging Face model folders: find one (local or hub), read its safetensors one tensor at a time, write one.

Only safetensors are read: pickle files (`pytorch_model.bin`, `*.pt`, `*.pth`) can run code when
loaded, so a folder holding only those is refused.
"""

import json
import os

import jax
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# What `resolve` fetches from the hub: weights as safetensors, configs, tokenizer files; nothing else.
HUB_PATTERNS = ["*.safetensors", "*.json", "tokenizer.model", "*.tiktoken", "*.txt"]


def _looks_like_path(name: str) -> bool:
  return name.startswith(("/", ".", "~")) or name.count("/") > 1  # hub names are "name" or "org/name"


def resolve(path_or_name: str) -> str:
  """A local folder as is, or a hub name ("meta-llama/Llama-3.2-1B") downloaded to the hub cache."""
  if os.path.isdir(os.path.expanduser(path_or_name)):
    return os.path.expanduser(path_or_name)
  if _looks_like_path(path_or_name):
    raise FileNotFoundError(f"no model folder at {path_or_name!r}; give a folder with config.json and "
                            "*.safetensors, or a hub name such as openai-community/gpt2")
  try:
    import huggingface_hub  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise RuntimeError(f"{path_or_name!r} is no local folder and huggingface_hub is not installed; "
                       "pip install huggingface_hub or pass a local folder") from None
  try:
    return huggingface_hub.snapshot_download(path_or_name, allow_patterns=HUB_PATTERNS,
                                             ignore_patterns=["original/*"])
  except Exception as e:  # offline, unknown or gated repo: one line naming the cause
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise RuntimeError(f"could not fetch {path_or_name!r} from the Hugging Face hub ({type(e).__name__}: "
                       f"{first}); check the network and the name, or pass a local folder") from None


def read_config(directory: str) -> dict:
  path = os.path.join(directory, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{directory!r} has no config.json: not a Hugging Face model folder")
  with open(path) as f:
    return json.load(f)


def _weight_files(directory: str) -> dict[str, str]:
  """Tensor name -> safetensors file, from the index when sharded; refuses pickle-only folders."""
  names = sorted(os.listdir(directory))
  index = os.path.join(directory, INDEX_FILE)
  if os.path.exists(index):
    with open(index) as f:
      return dict(json.load(f)["weight_map"])
  files = [n for n in names if n.endswith(".safetensors")]
  if not files:
    pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES) or n == "pytorch_model.bin.index.json"]
    if pickles:
      raise ValueError(f"{directory!r} holds only pickle weights ({', '.join(pickles[:3])}), which can run code "
                       "when loaded; convert them to safetensors first (save_pretrained(out, "
                       "safe_serialization=True) in a trusted environment)")
    raise FileNotFoundError(f"no {SINGLE_FILE} or {INDEX_FILE} in {directory!r}; only safetensors weights are "
                            "read (a hub repo with only pytorch_model.bin must be converted first)")
  out = {}
  for name in files:
    with safe_open(os.path.join(directory, name), framework="numpy") as f:
      out.update({key: name for key in f.keys()})
  return out


class SafetensorsReader:
  """Reads a folder's tensors one at a time (lazily opened files; bf16 kept as ml_dtypes bfloat16)."""

  def __init__(self, directory: str):
    self.directory = directory
    self.file_of = _weight_files(directory)
    self._open = {}

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    for handle in self._open.values():
      handle.__exit__(None, None, None)
    self._open.clear()

  def names(self) -> set[str]:
    return set(self.file_of)

  def _handle(self, name: str):
    file = self.file_of[name]
    if file not in self._open:
      path = os.path.join(self.directory, file)
      if not os.path.exists(path):
        raise FileNotFoundError(f"{INDEX_FILE} names {file!r}, which is missing from {self.directory!r}")
      self._open[file] = safe_open(path, framework="flax").__enter__()
    return self._open[file]

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(self._handle(name).get_slice(name).get_shape())

  def read(self, name: str) -> np.ndarray:
    """The tensor as a host numpy array (through JAX's CPU device, which also handles bfloat16)."""
    with jax.default_device(jax.devices("cpu")[0]):
      return np.asarray(self._handle(name).get_tensor(name))


def write_safetensors(directory: str, tensors, max_shard_bytes: int = 5 << 30) -> list[str]:
  """Write (name, numpy array) pairs as model.safetensors, or as shards plus an index past the size.

  Each shard is written as soon as it is full, so at most one shard is held in host memory.
  """
  os.makedirs(directory, exist_ok=True)
  temp, weight_map, current, size, total = [], {}, {}, 0, 0

  def flush():
    file = f"model-{len(temp) + 1:05d}.safetensors.partial"
    save_file(current, os.path.join(directory, file), metadata={"format": "pt"})
    temp.append(file)
    weight_map.update({name: file for name in current})

  for name, array in tensors:
    if current and size + array.nbytes > max_shard_bytes:
      flush()
      current, size = {}, 0
    current[name] = np.ascontiguousarray(array)
    size += array.nbytes
    total += array.nbytes
  if current or not temp:
    flush()
  if len(temp) == 1:
    os.replace(os.path.join(directory, temp[0]), os.path.join(directory, SINGLE_FILE))
    return [SINGLE_FILE]
  final = {t: f"model-{i + 1:05d}-of-{len(temp):05d}.safetensors" for i, t in enumerate(temp)}
  for t, f in final.items():
    os.replace(os.path.join(directory, t), os.path.join(directory, f))
  with open(os.path.join(directory, INDEX_FILE), "w") as f:
    json.dump({"metadata": {"total_size": total},
               "weight_map": {name: final[t] for name, t in weight_map.items()}}, f, indent=1)
  return list(final.values())
