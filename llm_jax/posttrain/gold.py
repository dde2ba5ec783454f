"""An offline "gold" labeller for nano: a programmatic score of a reply and noisy rankings drawn from it.

The score (every weight configurable; a term with weight 0 is off):
  correct     * [the reply's `#### n` answer equals the task's answer]   (arithmetic prompts)
  marker      * [the reply has a `#### <number>` line at all]            (format)
  - length    * words outside [min_words, max_words]                      (a target length band)
  - repetition* share of the reply's word 3-grams that repeat an earlier one
  - novel     * min(words found neither in the prompt nor in `allowed_words`, novel_cap)   (grounding)
  + word      * min(count, word_cap) - word * max(count - word_cap, 0)  of `target_word` (0: no word)
A nano model moves every term: the format and length within a few RL steps, repetition by sampling
degenerate loops, grounding by copying the question's names and objects instead of swapping in others
("Leo has 2 apples" answered with "Tara has 3 pencils"), correctness slowly. Correctness is the one term
a model that cannot add cannot see, so nano weighs it no more than the visible ones. The length band
and the word cap make more of a good thing bad beyond a point, which a reward model trained on the
start policy's samples cannot see: the room for over-optimisation that experiments/overoptimization.py
measures.

Labels: K replies are ranked by a Plackett-Luce draw with utilities score / temperature (sort by
score / temperature + Gumbel noise), so any two are ordered with Bradley-Terry probability
sigmoid((s_i - s_j) / temperature); temperature 0 sorts by score (noiseless).
"""

import re
from collections.abc import Sequence

import ml_collections
import numpy as np

from llm_jax.data.preferences import Ranking
from llm_jax.tasks.base import extract_number

_WORD_RE = re.compile(r"[A-Za-z]+")


def default_config() -> ml_collections.ConfigDict:
  """The `gold` section."""
  c = ml_collections.ConfigDict()
  c.correct = 0.5  # weight of a correct `#### answer` (prompts with a known answer)
  c.marker = 0.5  # weight of having a `#### <number>` answer line
  c.length = 0.05  # penalty per word outside [min_words, max_words]
  c.min_words = 8
  c.max_words = 30
  c.repetition = 2.0  # weight of the repeated word-3-gram share
  c.novel = 0.3  # penalty per reply word absent from the prompt and from allowed_words (up to novel_cap)
  c.novel_cap = 3
  c.allowed_words = "starts,with,has,now"  # words a good reply may add: the arithmetic references' framing
  c.target_word = ""  # a word rewarded up to word_cap occurrences and penalised beyond; "" disables
  c.word = 0.2
  c.word_cap = 2
  c.temperature = 0.3  # labelling noise (Bradley-Terry / Plackett-Luce temperature); 0: noiseless
  return c


def repetition(text: str) -> float:
  """Share of word 3-grams that already occurred earlier in the text (0 for fewer than 3 words)."""
  words = text.split()
  grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
  return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def novel_words(text: str, prompt: Sequence[dict], allowed: str = "") -> list[str]:
  """The reply's words (letter runs, lower-cased) that neither the prompt's messages nor `allowed`
  (comma-separated) contain: names, objects and garbage the reply made up."""
  known = {w.strip().lower() for w in allowed.split(",") if w.strip()}
  for message in prompt:
    content = message.get("content", "")
    if not isinstance(content, str):  # structured content: its text parts
      content = " ".join(part.get("text", "") for part in content)
    known.update(w.lower() for w in _WORD_RE.findall(content))
  return [w.lower() for w in _WORD_RE.findall(text) if w.lower() not in known]


def terms(text: str, answer: str | None, cfg, prompt: Sequence[dict] = ()) -> dict:
  """Each term of the score, already weighted (they sum to `score`); `prompt` (the messages) grounds the
  `novel` term."""
  words = text.split()
  n = len(words)
  out = {"marker": cfg.marker * float(extract_number(text) is not None),
         "length": -cfg.length * float(max(cfg.min_words - n, 0, n - cfg.max_words)),
         "repetition": -cfg.repetition * repetition(text)}
  if cfg.get("novel", 0.0):
    out["novel"] = -cfg.novel * min(len(novel_words(text, prompt, cfg.get("allowed_words", ""))), cfg.novel_cap)
  if answer is not None:
    out["correct"] = cfg.correct * float(extract_number(text) == answer)
  if cfg.target_word:
    count = sum(w.strip(".,!?;:").lower() == cfg.target_word.lower() for w in words)
    out["word"] = cfg.word * (min(count, cfg.word_cap) - max(count - cfg.word_cap, 0))
  return out


def score(text: str, answer: str | None, cfg, prompt: Sequence[dict] = ()) -> float:
  return float(sum(terms(text, answer, cfg, prompt).values()))


def rank(scores: Sequence[float], temperature: float, rng: np.random.Generator) -> np.ndarray:
  """Indices best first: a Plackett-Luce draw with utilities scores / temperature (0: sorted, stable)."""
  s = np.asarray(scores, np.float64)
  if temperature <= 0:
    return np.argsort(-s, kind="stable")
  return np.argsort(-(s / temperature + rng.gumbel(size=s.shape)), kind="stable")


def label(prompt, replies: Sequence[str], answer: str | None, cfg, rng: np.random.Generator) -> Ranking:
  """The gold's (noisy) ranking of `replies` to `prompt`, with their noiseless scores."""
  s = [score(r, answer, cfg, prompt) for r in replies]
  order = rank(s, cfg.temperature, rng)
  return Ranking(tuple(prompt), tuple(replies[i] for i in order), tuple(s[i] for i in order), answer)
