"""FineWeb's last step: replace email and public IP addresses (datatrove's PIIFormatter) with
placeholder ones. Runs in the main process after dedup, so the cycling placeholders are the same
whatever the number of workers."""

import ml_collections
from datatrove.data import Document

from llm_jax.data.clean import report as report_lib
from llm_jax.data.clean import stage as stage_lib


def default_config() -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict()
  cfg.enabled = True  # scrub emails and IP addresses
  cfg.remove_emails = True  # replace email addresses with email@example.com-style placeholders
  cfg.remove_ips = True  # replace IPv4 addresses with placeholder public IPs
  cfg.only_remove_public_ips = True  # keep private/loopback ones such as 127.0.0.1 or 192.168.0.1
  return cfg


def build(cfg: ml_collections.ConfigDict) -> stage_lib.Stage:
  from datatrove.pipeline.formatters import PIIFormatter  # pylint: disable=g-import-not-at-top
  step = PIIFormatter(**stage_lib.config_kwargs(cfg))

  def apply(docs: list[Document], report: report_lib.StageReport) -> list[Document]:
    for doc in docs:
      text = step.format(doc.text)
      if text != doc.text:
        report.notes["docs_scrubbed"] += 1
        doc.text = text
    return docs

  return stage_lib.Stage("pii", stage_lib.NOT_NONE, apply)
