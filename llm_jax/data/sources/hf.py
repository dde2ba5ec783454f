"""Documents streamed from a Hugging Face dataset (`datasets` is imported only when asked for)."""

import collections
from collections.abc import Iterator

from datatrove.data import Document

from llm_jax.data.sources import files


def parse_name(arg: str) -> tuple[str, str | None, str]:
  """'org/name[/subset][:split]' -> (name, subset, split); split defaults to 'train'."""
  path, _, split = arg.partition(":")
  parts = [p for p in path.split("/") if p]
  if not parts:
    raise ValueError(f"hf:{arg} names no dataset; write hf:org/name[/subset][:split]")
  if len(parts) <= 2:
    return "/".join(parts), None, split or "train"
  return "/".join(parts[:2]), "/".join(parts[2:]), split or "train"


def open_hf(arg: str, spec: str, opts: dict, skipped: collections.Counter) -> Iterator[Document]:
  """Open the dataset now (so a missing package or network fails at once) and stream its rows."""
  try:
    import datasets  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise RuntimeError(f"source {spec!r} needs the `datasets` package, which is not installed: "
                       "pip install datasets (and network access to the Hugging Face hub)") from None
  name, subset, split = parse_name(arg)
  try:
    rows = datasets.load_dataset(name, subset, split=split, streaming=True)
  except Exception as e:  # pylint: disable=broad-except  (offline, unknown name, bad split, ...)
    reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    raise RuntimeError(f"source {spec!r} could not be opened (no network to the Hugging Face hub, "
                       f"or a wrong name/subset/split): {reason}") from None

  def generate() -> Iterator[Document]:
    for number, row in enumerate(rows):
      doc = files.record_doc(row, opts["field"], f"hf:{name}#{number}", f"hf:{arg}", skipped)
      if doc is not None:
        yield doc

  return generate()
