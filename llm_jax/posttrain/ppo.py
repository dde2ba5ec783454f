"""PPO for RLHF (Ziegler et al., 2019; InstructGPT): the math as pure functions and the two jitted steps.

A rollout row is prompt + reply in [B, T] arrays (rollouts.to_batch): position t reads tokens[t] and
takes the action targets[t]; `mask` marks the reply's actions. Per-token reward
  r_t = -kl_coef * KL_t  (+ the reward model's score of the whole row, and a penalty when the reply never
                          stopped, on the last action)
with KL_t a k1 (log pi - log ref) or k3 estimate against the frozen initial (SFT) model. GAE:
  delta_t = r_t + gamma V_{t+1} - V_t,  A_t = delta_t + gamma lambda A_{t+1},  returns R_t = A_t + V_t
(V after the last action is 0). The value head shares the policy's trunk (posttrain/heads.py). Losses:
  policy  max(-A rho, -A clip(rho, 1 - clip, 1 + clip)),  rho = pi / pi_old
  value   0.5 max((V - R)^2, (V_old + clip(V - V_old, -value_clip, value_clip) - R)^2)
averaged over reply tokens; total = policy + vf_coef * value. The KL coefficient is fixed or adaptive
(Ziegler et al.): coef *= 1 + clip(KL / target - 1, -0.2, 0.2) * n / horizon, with KL per sequence.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from llm_jax.posttrain.grpo import kl_estimate, masked_mean
from llm_jax.posttrain.heads import final_hidden, logits_from_hidden, token_logprobs


def kl_config() -> ml_collections.ConfigDict:
  """The `kl` section of RLHF: the penalty to the initial (SFT) model."""
  c = ml_collections.ConfigDict()
  c.coef = 0.05  # initial coefficient; 0 with adaptive=False: no penalty (over-optimisation runs)
  c.adaptive = False  # Ziegler et al.'s proportional controller toward `target`
  c.target = 6.0  # (adaptive) KL per sequence, nats
  c.horizon = 10000  # (adaptive) samples over which the coefficient may change by e^(+-0.2)
  c.estimator = "k1"  # per-token KL estimate in the reward: "k1" (log pi - log ref) | "k3"
  return c


def update_kl_coef(coef: float, kl: float, n_samples: int, kc) -> float:
  """The next KL coefficient: unchanged when fixed; the adaptive controller's otherwise."""
  if not kc.adaptive:
    return coef
  error = float(np.clip(kl / kc.target - 1.0, -0.2, 0.2))
  return coef * (1.0 + error * n_samples / kc.horizon)


def gae(rewards_BxT, values_BxT, mask_BxT, gamma: float, lam: float):
  """(advantages, returns) float32[B, T] over each row's masked (contiguous) actions; zero elsewhere."""
  mask_BxT = mask_BxT.astype(jnp.float32)
  values_BxT = values_BxT * mask_BxT
  next_values_BxT = jnp.concatenate([values_BxT[:, 1:], jnp.zeros_like(values_BxT[:, :1])], axis=1)
  deltas_BxT = (rewards_BxT + gamma * next_values_BxT - values_BxT) * mask_BxT

  def back(next_adv_B, x):
    delta_B, m_B = x
    adv_B = (delta_B + gamma * lam * next_adv_B) * m_B
    return adv_B, adv_B

  _, adv_TxB = jax.lax.scan(back, jnp.zeros_like(deltas_BxT[:, 0]), (deltas_BxT.T, mask_BxT.T), reverse=True)
  adv_BxT = adv_TxB.T
  return adv_BxT, (adv_BxT + values_BxT) * mask_BxT


def whiten(x_BxT, mask_BxT, eps: float = 1e-8):
  """x normalised to mean 0, std 1 over the masked tokens (zero elsewhere)."""
  mean = masked_mean(x_BxT, mask_BxT)
  var = masked_mean(jnp.square(x_BxT - mean), mask_BxT)
  return (x_BxT - mean) * jax.lax.rsqrt(var + eps) * mask_BxT


def token_rewards(kl_BxT, score_B, mask_BxT, kl_coef):
  """r_t: -kl_coef * KL_t on every action, plus the row's score on its last action."""
  mask_BxT = mask_BxT.astype(jnp.float32)
  T = mask_BxT.shape[1]
  last_B = T - 1 - jnp.argmax(mask_BxT[:, ::-1], axis=1)
  final_BxT = jax.nn.one_hot(last_B, T) * score_B[:, None] * (mask_BxT.sum(1) > 0)[:, None]
  return (-kl_coef * kl_BxT + final_BxT) * mask_BxT


def ppo_losses(logp_BxT, values_BxT, batch, clip: float, value_clip: float):
  """(policy loss, value loss, metrics) of one minibatch (see the module docstring)."""
  mask_BxT, adv_BxT = batch["mask"], batch["adv"]
  ratio_BxT = jnp.exp(logp_BxT - batch["old_logp"])
  pg_BxT = jnp.maximum(-adv_BxT * ratio_BxT, -adv_BxT * jnp.clip(ratio_BxT, 1.0 - clip, 1.0 + clip))
  v_clipped_BxT = batch["old_values"] + jnp.clip(values_BxT - batch["old_values"], -value_clip, value_clip)
  vf_BxT = 0.5 * jnp.maximum(jnp.square(values_BxT - batch["returns"]), jnp.square(v_clipped_BxT - batch["returns"]))
  log_ratio_BxT = logp_BxT - batch["old_logp"]
  metrics = {"rl/clip_frac": masked_mean((jnp.abs(ratio_BxT - 1.0) > clip).astype(jnp.float32), mask_BxT),
             "rl/approx_kl": masked_mean(jnp.exp(log_ratio_BxT) - 1.0 - log_ratio_BxT, mask_BxT),
             "rl/value_clip_frac": masked_mean((jnp.abs(values_BxT - batch["old_values"]) > value_clip)
                                               .astype(jnp.float32), mask_BxT)}
  return masked_mean(pg_BxT, mask_BxT), masked_mean(vf_BxT, mask_BxT), metrics


def policy_and_values(graphdef, head_graphdef, params, head_params, batch, temperature: float):
  """(log-prob of each target at `temperature`, value of each position), float32[B, T], one pass."""
  model = nnx.merge(graphdef, params)
  x_BxTxE = final_hidden(model, batch["tokens"], batch["positions"])
  logits_BxTxV = logits_from_hidden(model, x_BxTxE) / temperature
  return token_logprobs(logits_BxTxV, batch["targets"]), nnx.merge(head_graphdef, head_params)(x_BxTxE)


def make_experience_fn(graphdef, head_graphdef, rm_graphdef, pc):
  """experience(state, ref_params, rm_params, batch) -> dict of float32 arrays: old_logp, old_values,
  ref_logp, kl, adv (whitened if configured), returns [B, T], and score [B] (reward model + penalty).

  batch: tokens/positions/targets/mask [B, T]; rm_tokens int32[B, T + 1] (the whole row) and
  rm_last int32[B] (its last token); finished bool[B]."""
  def experience(state, ref_params, rm_params, batch):
    mask_BxT = batch["mask"]
    logp_BxT, values_BxT = policy_and_values(graphdef, head_graphdef, state["params"], state["value_head"], batch,
                                             pc.temperature)
    ref_model = nnx.merge(graphdef, ref_params)
    ref_logits_BxTxV, _ = ref_model(batch["tokens"], batch["positions"])
    ref_logp_BxT = token_logprobs(ref_logits_BxTxV / pc.temperature, batch["targets"])
    positions_BxS = jnp.broadcast_to(jnp.arange(batch["rm_tokens"].shape[1], dtype=jnp.int32), batch["rm_tokens"].shape)
    rm_B = nnx.merge(rm_graphdef, rm_params)(batch["rm_tokens"], positions_BxS, batch["rm_last"])
    score_B = rm_B + pc.no_stop_penalty * (1.0 - batch["finished"].astype(jnp.float32))
    kl_BxT = kl_estimate(logp_BxT, ref_logp_BxT, pc.kl.estimator) * mask_BxT
    rewards_BxT = token_rewards(kl_BxT, score_B, mask_BxT, state["kl_coef"])
    adv_BxT, returns_BxT = gae(rewards_BxT, values_BxT, mask_BxT, pc.gamma, pc.lam)
    if pc.whiten_advantages:
      adv_BxT = whiten(adv_BxT, mask_BxT)
    return {"old_logp": logp_BxT, "old_values": values_BxT * mask_BxT, "ref_logp": ref_logp_BxT, "kl": kl_BxT,
            "adv": adv_BxT, "returns": returns_BxT, "score": score_B, "rm_score": rm_B}
  return experience


def make_update_step(graphdef, head_graphdef, optimizer: optax.GradientTransformation, pc):
  """step(state, minibatch) -> (state, metrics): one optimizer step on policy + vf_coef * value loss.
  state: params (policy), value_head, opt_state (of both), step, kl_coef. A non-finite loss or gradient
  leaves the state untouched and reports nonfinite=1."""
  def loss_fn(trainable, batch):
    logp_BxT, values_BxT = policy_and_values(graphdef, head_graphdef, trainable["params"], trainable["value_head"],
                                             batch, pc.temperature)
    pg, vf, metrics = ppo_losses(logp_BxT, values_BxT, batch, pc.clip, pc.value_clip)
    return pg + pc.vf_coef * vf, {**metrics, "rl/policy_loss": pg, "rl/value_loss": vf}

  def step(state, batch):
    trainable = {"params": state["params"], "value_head": state["value_head"]}
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, batch)
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = optimizer.update(grads, state["opt_state"], trainable)
    new = optax.apply_updates(trainable, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda a, b: jax.tree.map(lambda x, y: jnp.where(finite, x, y), a, b)
    new_state = dict(state, **keep(new, trainable), opt_state=keep(opt_state, state["opt_state"]),
                     step=state["step"] + 1)
    return new_state, {**metrics, "rl/loss": loss, "train/grad_norm": grad_norm,
                       "nonfinite": 1 - finite.astype(jnp.int32)}
  return step
