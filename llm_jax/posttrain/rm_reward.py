"""A trained reward model as a reward: score (prompt, reply) texts in fixed-size batches, and a Task
wrapper so the RL engineer's GRPO stage (posttrain/rl.py) optimises the reward model's score.

A reply is rendered with its prompt exactly as the reward model was trained (`tokenizer.chat.render`,
ending with the assistant's end token); an empty reply reads the prompt and the end token; a row longer
than `seq_len` tokens is cut (its score then reads the last token that fits).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from llm_jax.posttrain import reward_model
from llm_jax.tasks.base import Example
from llm_jax.tokenizer.chat import InvalidConversation, render, render_for_completion, stop_ids


def reply_ids(prompt: Sequence[dict], reply: str, tokenizer, template: str = "llm_jax") -> list[int]:
  """Token ids of prompt + reply as one rendered conversation."""
  try:
    return render(list(prompt) + [{"role": "assistant", "content": reply}], tokenizer, template=template)[0]
  except InvalidConversation:  # an empty reply: the prompt and the end token
    return render_for_completion(list(prompt), tokenizer, template=template) + list(stop_ids(tokenizer, template)[:1])


class RewardModelScorer:
  """scores(prompts, replies) -> float32[n] from a trained reward model, `batch_size` rows per call."""

  def __init__(self, workdir: str, stage: str, tokenizer, template: str, seq_len: int, batch_size: int = 8,
               loaded=None):
    self.graphdef, self.params, self.cfg = loaded or reward_model.load_reward_model(workdir, stage)
    self.tokenizer, self.template, self.seq_len, self.batch_size = tokenizer, template, seq_len, batch_size
    self._score = jax.jit(lambda p, t, n: reward_model.scores(self.graphdef, p, t, n)[:, 0])

  def score_ids(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
    """float32[n] scores of already tokenised rows (each read at its last token)."""
    out = []
    for start in range(0, len(rows), self.batch_size):
      chunk = rows[start:start + self.batch_size]
      tokens = np.zeros((self.batch_size, 1, self.seq_len), np.int32)
      lengths = np.ones((self.batch_size, 1), np.int32)
      for i, ids in enumerate(chunk):
        ids = list(ids)[:self.seq_len]
        tokens[i, 0, :len(ids)], lengths[i, 0] = ids, len(ids)
      out.append(np.asarray(self._score(self.params, jnp.asarray(tokens), jnp.asarray(lengths)))[:len(chunk)])
    return np.concatenate(out) if out else np.zeros(0, np.float32)

  def scores(self, prompts: Sequence[Sequence[dict]], replies: Sequence[str]) -> np.ndarray:
    return self.score_ids([reply_ids(p, r, self.tokenizer, self.template) for p, r in zip(prompts, replies)])


class RewardModelTask:
  """A task's prompts (train/test examples) with the reward model's score as `reward`: what GRPO's
  `train_rl(task=...)` needs (name, examples, reward). Scores one reply per call (batch 1)."""

  def __init__(self, task, scorer: RewardModelScorer):
    self.task, self.scorer, self.name = task, scorer, task.name

  def examples(self, split: str, n: int) -> list[Example]:
    return self.task.examples(split, n)

  def reward(self, completion: str, example: Example) -> float:
    return float(self.scorer.scores([example.prompt], [completion])[0])
