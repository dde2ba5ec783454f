"""The cleaning config: how it runs, and one section per stage (each documented in its file)."""

import ml_collections

from llm_jax.data.clean import c4, dedup, extract, fineweb, gopher_quality, gopher_repetition
from llm_jax.data.clean import language, minhash, pii, url

# Stage order (FineWeb's). `url` runs in the main process (its blocklists load once), the next six
# in worker processes over chunks of documents, the last three in the main process (global state).
MAIN_BEFORE = ("url",)
PER_DOCUMENT = ("extract", "language", "gopher_repetition", "gopher_quality", "c4", "fineweb")
MAIN_AFTER = ("exact_dedup", "minhash_dedup", "pii")
STAGES = MAIN_BEFORE + PER_DOCUMENT + MAIN_AFTER
MODULES = {"url": url, "extract": extract, "language": language,
           "gopher_repetition": gopher_repetition, "gopher_quality": gopher_quality, "c4": c4,
           "fineweb": fineweb, "exact_dedup": dedup, "minhash_dedup": minhash, "pii": pii}


def default_config() -> ml_collections.ConfigDict:
  """Cleaning config. Which stages touch a document also depends on its source's clean level
  (full / light / none, see llm_jax.data.sources)."""
  cfg = ml_collections.ConfigDict()
  cfg.num_workers = -1  # processes for the per-document stages; -1: one per CPU, 0: this process
  cfg.chunk_docs = 64  # documents per task sent to a worker (output order never depends on it)
  cfg.start_method = "forkserver"  # multiprocessing start method ('forkserver' is safe beside JAX)
  cfg.progress = True  # tqdm progress bar on stderr
  for name in STAGES:
    cfg[name] = MODULES[name].default_config()
  return cfg
