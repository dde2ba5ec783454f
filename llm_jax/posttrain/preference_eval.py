"""How a policy stage does on the gold function (and a reward model): sampled replies to held-out prompts,
their mean gold score and its terms, into eval.json as eval/gold@<stage>/<metric>."""

import numpy as np

from llm_jax.eval import results
from llm_jax.posttrain import gold
from llm_jax.posttrain.preference_data import sample_replies, task_prompts
from llm_jax.posttrain.rm_reward import RewardModelScorer


def gold_eval(cfg, workdir: str, stage: str, tokenizer=None, reward_stage: str = "", seq_len: int = 256) -> dict:
  """Sample cfg.preferences.replies replies to each of cfg.preferences.test_prompts held-out prompts from
  `stage` (the preference data's sampling settings); score with cfg.gold (and `reward_stage` if given)."""
  pc = cfg.preferences
  examples = task_prompts(cfg, "test", pc.test_prompts)
  replies = sample_replies(workdir, stage, [ex.prompt for ex in examples], pc.replies, pc, cfg.seed + 101)
  flat = [(ex, r) for ex, rs in zip(examples, replies) for r in rs]
  terms = [gold.terms(r, ex.answer, cfg.gold, ex.prompt) for ex, r in flat]
  m = {"score": float(np.mean([sum(t.values()) for t in terms])),
       "words": float(np.mean([len(r.split()) for _, r in flat]))}
  m.update({k: float(np.mean([t[k] for t in terms])) for k in terms[0]})
  if reward_stage:
    from llm_jax.tokenizer.chat import detect_template  # pylint: disable=g-import-not-at-top
    scorer = RewardModelScorer(workdir, reward_stage, tokenizer, detect_template(tokenizer), seq_len, pc.batch_size)
    m["reward_model"] = float(scorer.scores([ex.prompt for ex, _ in flat], [r for _, r in flat]).mean())
  flat_m = results.flatten(f"gold@{stage}", m)
  results.merge_results(workdir, flat_m)
  print(f"[gold_eval] {stage}: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()), flush=True)
  return flat_m
