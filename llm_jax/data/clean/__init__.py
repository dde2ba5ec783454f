"""FineWeb-style cleaning, one file per step: url -> extract -> language -> gopher_repetition ->
gopher_quality -> c4 -> fineweb -> exact_dedup -> minhash_dedup -> pii."""

from llm_jax.data.clean.bench import bench_cleaning
from llm_jax.data.clean.config import STAGES, default_config
from llm_jax.data.clean.report import StageReport, markdown_table, report_to_dict
from llm_jax.data.clean.run import clean_documents, iter_clean
