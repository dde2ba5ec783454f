"""The special tokens every tokenizer this project trains reserves, in this order, from the start.

Code never hard-codes their ids: ask the tokenizer (`tokenizer.special_id("<|bos|>")`).
"""

BOS = "<|bos|>"  # document boundary: starts every document in pretraining shards
SYSTEM_START, SYSTEM_END = "<|system_start|>", "<|system_end|>"
USER_START, USER_END = "<|user_start|>", "<|user_end|>"
ASSISTANT_START, ASSISTANT_END = "<|assistant_start|>", "<|assistant_end|>"
PYTHON_START, PYTHON_END = "<|python_start|>", "<|python_end|>"
SEARCH_START, SEARCH_END = "<|search_start|>", "<|search_end|>"
OUTPUT_START, OUTPUT_END = "<|output_start|>", "<|output_end|>"
NUM_SPARE = 8

SPECIAL_TOKENS: tuple[str, ...] = (
    BOS,
    SYSTEM_START, SYSTEM_END,
    USER_START, USER_END,
    ASSISTANT_START, ASSISTANT_END,
    PYTHON_START, PYTHON_END,
    SEARCH_START, SEARCH_END,
    OUTPUT_START, OUTPUT_END,
) + tuple(f"<|spare_{i}|>" for i in range(NUM_SPARE))
