"""The RL stage: GRPO against a task's checkable answers, from a trained stage into checkpoints/<stage>.

Each step samples G replies to each of N training prompts with the KV-cache engine, which reads the
trainer's current parameters in memory (no disk round trip); scores them with the task's reward; turns
rewards into group advantages; recomputes the sampling policy's per-token log-probs with one jitted
forward pass (equal to the sampler's at top_k=0, top_p=1); then takes `epochs` x `minibatches` clipped
policy-gradient steps (posttrain/grpo.py). Held-out pass@1/pass@k are measured before training, every
`eval_every` steps and at the end; the first and last also go to eval.json as eval/<task>@<stage>/...
Metrics go to metrics/<stage>.jsonl, sample completions to samples/rl_step<k>.txt; checkpoints resume.
`algorithm="rejection"` runs rejection-sampling fine-tuning instead (posttrain/rejection.py).
"""

import os

import ml_collections

from llm_jax.train import optim


def default_config() -> ml_collections.ConfigDict:
  """The `rl` section."""
  c = ml_collections.ConfigDict()
  c.algorithm = "grpo"  # "grpo" | "rejection" (sample, keep the correct, fine-tune; posttrain/rejection.py)
  c.task = "arithmetic"  # task (llm_jax.tasks) giving prompts (train split), held-out prompts and the reward
  c.reward = "correct@1"  # weighted reward terms: correct, format (tasks/rewards.py)
  c.steps = 100  # RL steps: sample, score, update
  c.prompts_per_step = 16  # N prompts per step
  c.group_size = 8  # G replies per prompt
  c.max_prompt_len = 256  # prompts longer than this many tokens are skipped
  c.max_new_tokens = 256  # reply budget (tool outputs included); a reply that hits it is truncated
  c.temperature = 1.0  # sampling temperature; log-probs are computed at the same temperature
  c.top_p = 1.0  # keep 1 (and top_k 0): the recomputed log-probs then equal the sampler's
  c.top_k = 0
  c.rollout_batch = 0  # engine rows per generation batch (held-out eval too); 0: N * G
  c.epochs = 1  # optimisation passes over each batch of rollouts
  c.minibatches = 1  # optimizer steps per pass (N * G rows split evenly)
  c.advantage_scale = "group"  # "group" (GRPO) | "batch" | "none" (Dr. GRPO)
  c.loss_agg = "token"  # "token" (DAPO) | "sequence" (GRPO) | "constant" (Dr. GRPO: / max_new_tokens)
  c.eps_low = 0.2  # ratio clip below 1 - eps_low
  c.eps_high = 0.28  # ... and above 1 + eps_high (DAPO's clip-higher)
  c.kl_coef = 0.0  # weight of the KL to the initial (reference) model in the loss
  c.kl_estimator = "k3"  # "k1" | "k3"
  c.track_kl = True  # log rl/kl even when kl_coef = 0 (one more forward pass per step, a params copy)
  c.drop_zero_variance = True  # groups whose rewards are all equal carry no loss (and no token count)
  c.truncation = "mask"  # truncated replies: "mask" (no loss) | "penalty" (reward - penalty) | "none"
  c.truncation_penalty = 1.0
  c.tools = ""  # tools run during rollouts, e.g. "python"; their outputs are forced and carry no loss
  c.search_corpus = ""  # the search tool's corpus (a data source spec), if "search" is in tools
  c.train_examples = 0  # training prompt pool; 0: steps * prompts_per_step (each prompt once)
  c.eval_every = 25  # held-out evaluation interval in steps (also before the first and after the last)
  c.eval_examples = 64  # held-out prompts; 0 disables evaluation
  c.eval_samples = 16  # replies per held-out prompt (pass@k for k <= this)
  c.eval_ks = "1,16"
  c.log_every = 1
  c.samples_every = 25  # samples/rl_step<k>.txt interval
  c.checkpoint_every = 25
  c.tensorboard = True
  c.optim = optim.default_config()  # the optimizer; RL moves slowly: small constant lr, no decay
  c.optim.update(dict(lr=1e-6, warmup_steps=5, schedule="constant", weight_decay=0.0, b2=0.99, grad_clip=1.0))
  c.rejection = ml_collections.ConfigDict(dict(
      rounds=2,  # sample-filter-train rounds
      problems=256,  # training problems per round
      samples=16,  # replies sampled per problem
      keep=1,  # correct replies kept per problem, shortest first
      steps=100,  # fine-tuning steps per round
      batch_size=16))  # fine-tuning batch (sequences of model.max_seq_len)
  return c


