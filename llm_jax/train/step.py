"""The pure train and eval steps: masked next-token cross-entropy, gradient accumulation, guarded update."""

import jax
import jax.numpy as jnp
import optax
from flax import nnx


def token_losses(graphdef, params, batch: dict):
  """Per-token cross-entropy and log-sum-exp, float32[B, T], for one batch of
  tokens/targets/positions/segment_ids (all int32[B, T])."""
  model = nnx.merge(graphdef, params)
  logits_BxTxV, _ = model(batch["tokens"], batch["positions"], segment_ids=batch.get("segment_ids"))
  lse_BxT = jax.nn.logsumexp(logits_BxTxV, axis=-1)
  target_logit_BxT = jnp.take_along_axis(logits_BxTxV, batch["targets"][..., None], axis=-1)[..., 0]
  return lse_BxT - target_logit_BxT, lse_BxT


def loss_sums(graphdef, params, batch: dict, z_loss: float):
  """(objective sum, (cross-entropy sum, target-token count)) over the batch's loss mask."""
  ce_BxT, lse_BxT = token_losses(graphdef, params, batch)
  mask_BxT = batch["loss_mask"].astype(jnp.float32)
  ce_sum = (ce_BxT * mask_BxT).sum()
  objective = ce_sum + z_loss * (jnp.square(lse_BxT) * mask_BxT).sum() if z_loss else ce_sum
  return objective, (ce_sum, mask_BxT.sum())


def make_train_step(graphdef, optimizer: optax.GradientTransformation, z_loss: float = 0.0):
  """Returns step(state, batch) -> (state, metrics).

  `state` = {"params", "opt_state", "step", "rng"} (rng is carried for stochastic layers); every batch array is [micro_steps, B, T]. Gradients of the
  summed loss are accumulated over micro-steps and divided by the total number of target tokens, so
  accumulation equals one big batch. A non-finite loss or gradient leaves params and optimizer state
  untouched and reports `nonfinite=1`.
  """
  grad_fn = jax.value_and_grad(lambda p, b: loss_sums(graphdef, p, b, z_loss), has_aux=True)

  def step(state, batch):
    params = state["params"]

    def micro_step(carry, micro_batch):
      grads_acc, ce_acc, n_acc = carry
      (_, (ce_sum, n)), grads = grad_fn(params, micro_batch)
      return (jax.tree.map(jnp.add, grads_acc, grads), ce_acc + ce_sum, n_acc + n), None

    if jax.tree.leaves(batch)[0].shape[0] == 1:  # no accumulation: skip the scan and its zero buffers
      (_, (ce_sum, n)), grads = grad_fn(params, jax.tree.map(lambda x: x[0], batch))
    else:
      zeros = jax.tree.map(jnp.zeros_like, params)
      (grads, ce_sum, n), _ = jax.lax.scan(micro_step, (zeros, 0.0, 0.0), batch)
    n = jnp.maximum(n, 1.0)
    grads = jax.tree.map(lambda g: g / n, grads)
    loss = ce_sum / n
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = optimizer.update(grads, state["opt_state"], params)
    new_params = optax.apply_updates(params, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    new_state = {"params": keep(new_params, params), "opt_state": keep(opt_state, state["opt_state"]),
                 "step": state["step"] + 1, "rng": state["rng"]}
    metrics = {"train/loss": loss, "train/grad_norm": grad_norm, "train/tokens": n,
               "nonfinite": 1 - finite.astype(jnp.int32)}
    return new_state, metrics

  return step


def make_eval_step(graphdef):
  """eval_step(params, batch[B, T]) -> (cross-entropy sum, target tokens, target bytes).

  `batch` must carry `target_bytes` (float32[B, T], UTF-8 bytes of each target token) for bits per byte.
  """
  def eval_step(params, batch):
    ce_BxT, _ = token_losses(graphdef, params, batch)
    mask_BxT = batch["loss_mask"].astype(jnp.float32)
    return (ce_BxT * mask_BxT).sum(), mask_BxT.sum(), (batch["target_bytes"] * mask_BxT).sum()
  return eval_step
