"""Optimizers (AdamW with a decay mask, Muon for matrices) and learning-rate schedules."""

import jax
import ml_collections
import optax
from optax.contrib import MuonDimensionNumbers

EMBEDDING_NAMES = ("embed", "pos_embed", "head")


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.optimizer = "adamw"  # "adamw" | "muon" (Muon on hidden matrices, AdamW on embeddings, norms, biases)
  c.lr = 6e-4  # peak learning rate
  c.min_lr_ratio = 0.1  # final lr = lr * min_lr_ratio
  c.warmup_steps = 100
  c.schedule = "cosine"  # "cosine" | "linear" | "wsd" (warmup-stable-decay) | "constant" (after warmup)
  c.decay_fraction = 0.2  # "wsd": fraction of steps spent annealing at the end
  c.b1 = 0.9
  c.b2 = 0.95
  c.eps = 1e-8
  c.weight_decay = 0.1  # decoupled; applied to matrices only unless the flags below say otherwise
  c.decay_embeddings = False
  c.decay_norms_and_biases = False
  c.grad_clip = 1.0  # global-norm clipping; 0 disables
  c.muon_lr = 0.02  # "muon": learning rate of the Muon part (scaled by the same schedule)
  return c


def schedule(cfg, total_steps: int, peak: float) -> optax.Schedule:
  warmup = min(cfg.warmup_steps, max(total_steps - 1, 0))
  end = peak * cfg.min_lr_ratio
  rest = max(total_steps - warmup, 1)
  if cfg.schedule == "cosine":
    main = optax.cosine_decay_schedule(peak, rest, alpha=cfg.min_lr_ratio)
  elif cfg.schedule == "linear":
    main = optax.linear_schedule(peak, end, rest)
  elif cfg.schedule == "constant":
    main = optax.constant_schedule(peak)
  elif cfg.schedule == "wsd":
    decay = max(int(rest * cfg.decay_fraction), 1)
    main = optax.join_schedules([optax.constant_schedule(peak), optax.linear_schedule(peak, end, decay)],
                                [rest - decay])
  else:
    raise ValueError(f"train.schedule={cfg.schedule!r} is not one of cosine, linear, wsd, constant")
  if warmup == 0:
    return main
  return optax.join_schedules([optax.linear_schedule(peak / max(warmup, 1), peak, warmup), main], [warmup])


def _path_names(path) -> list[str]:
  names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
  return [n for n in names if n != "value"]  # nnx.Variable leaves add a trailing "value"


def _is_matrix(names: list[str]) -> bool:
  """Weight matrices are named w* in the model (wq, w_in, ...); biases b*, norms scale/bias."""
  return names[-1].startswith("w")


def decay_mask(cfg, params):
  """True where weight decay applies: matrices, and embeddings / vectors only when configured."""
  def one(path, leaf):
    names = _path_names(path)
    if any(n in EMBEDDING_NAMES for n in names):
      return cfg.decay_embeddings
    return _is_matrix(names) or cfg.decay_norms_and_biases
  return jax.tree.map_with_path(one, params)


def _muon_dims(params):
  """Muon dimension numbers for hidden matrices (input axes -> output axes), None elsewhere (AdamW).
  A leading `layers` axis (model.scan_layers) is a batch axis: each layer's matrix is orthogonalised alone."""
  def one(path, leaf):
    names = _path_names(path)
    if not _is_matrix(names) or any(n in EMBEDDING_NAMES for n in names):
      return None
    if names[-1] in ("wq", "wk", "wv"):  # [embed, heads, head_dim]
      reduction, output = (0,), (1, 2)
    elif names[-1] == "wo":  # [heads, head_dim, embed]
      reduction, output = (0, 1), (2,)
    else:
      reduction, output = (0,), (1,)
    shift = leaf.ndim - len(reduction) - len(output)
    return MuonDimensionNumbers(reduction_axis=tuple(a + shift for a in reduction),
                                output_axis=tuple(a + shift for a in output))
  return jax.tree.map_with_path(one, params)


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
  """Global-norm clipping, then AdamW or Muon, with the learning-rate schedule over `total_steps`."""
  lr = schedule(cfg, total_steps, cfg.lr)
  mask = lambda p: decay_mask(cfg, p)
  if cfg.optimizer == "adamw":
    opt = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay, mask=mask)
  elif cfg.optimizer == "muon":
    opt = optax.contrib.muon(
        schedule(cfg, total_steps, cfg.muon_lr), weight_decay=cfg.weight_decay, weight_decay_mask=mask,
        adam_b1=cfg.b1, adam_b2=cfg.b2, adam_learning_rate=lr, adam_weight_decay=cfg.weight_decay,
        muon_weight_dimension_numbers=_muon_dims)
  else:
    raise ValueError(f"train.optimizer={cfg.optimizer!r} is not one of adamw, muon")
  chain = [optax.clip_by_global_norm(cfg.grad_clip)] if cfg.grad_clip else []
  return optax.chain(*chain, opt)
