"""Near dedup: MinHash over word n-grams of the normalised text, with an LSH index (datasketch).

A document is dropped when an earlier kept document's estimated Jaccard similarity to it reaches
`threshold` (LSH finds the candidates, the MinHash estimate confirms them). Signatures are computed
by the parallel workers (`Signer`); the index is a global pass in stream order.
"""

import ml_collections
from datatrove.data import Document

from llm_jax.data.clean import report as report_lib
from llm_jax.data.clean import stage as stage_lib

KEY = "_minhash"


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # drop near-duplicates (keeps the first)
  cfg.threshold = 0.8  # Jaccard similarity of n-gram sets at which two documents are duplicates
  cfg.num_perm = 128  # MinHash permutations (more: better estimates, slower)
  cfg.ngram = 5  # words per shingle (FineWeb: 5)
  cfg.seed = 1  # MinHash permutation seed
  return cfg


class Signer:
  """Worker side: MinHash signatures, all sharing one set of permutations."""

  def __init__(self, cfg: ml_collections.ConfigDict):
    from datasketch import MinHash  # pylint: disable=g-import-not-at-top
    self.ngram = cfg.ngram
    self._template = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)

  def signature(self, text: str):
    from datasketch import LeanMinHash, MinHash  # pylint: disable=g-import-not-at-top
    from datatrove.utils.text import simplify_text  # pylint: disable=g-import-not-at-top
    words = simplify_text(text).split()
    n = self.ngram
    shingles = {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}
    t = self._template
    m = MinHash(num_perm=len(t), seed=t.seed, permutations=t.permutations, scheme=t.scheme)
    m.update_batch([s.encode("utf-8", "surrogatepass") for s in shingles])
    return LeanMinHash(m)

  def add_signatures(self, docs: list[Document]) -> None:
    for doc in docs:
      doc.metadata[KEY] = self.signature(doc.text)


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  from datasketch import MinHashLSH  # pylint: disable=g-import-not-at-top
  try:
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm)
  except ValueError as e:
    raise ValueError(f"minhash_dedup: threshold={cfg.threshold} with num_perm={cfg.num_perm} is not "
                     f"usable ({e}); lower the threshold or raise num_perm") from None
  kept_signatures = {}
  signer = []  # built on first need: documents that arrive without a worker-made signature

  def apply(docs: list[Document], report: report_lib.StageReport) -> list[Document]:
    kept = []
    for doc in docs:
      m = doc.metadata.pop(KEY, None)
      if m is None:
        if not signer:
          signer.append(Signer(cfg))
        m = signer[0].signature(doc.text)
      if any(m.jaccard(kept_signatures[k]) >= cfg.threshold for k in lsh.query(m)):
        report.dropped["near_duplicate"] += 1
        continue
      key = len(kept_signatures)
      lsh.insert(key, m)
      kept_signatures[key] = m
      kept.append(doc)
    return kept

  return stage_lib.Stage("minhash_dedup", stage_lib.NOT_NONE, apply)
