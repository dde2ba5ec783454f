"""When to stop optimising a proxy reward: a KL budget, or a held-out check that falls while the proxy rises.

Gao et al. (2022): the gold score peaks at some KL from the start policy and then falls while the proxy
keeps rising. Two rules an RLHF config can enable (`rlhf.stop`):
  kl_budget   stop once the held-out KL per sequence (val/kl_seq, nats) exceeds it
  check       "gold" (the gold function, where there is one) or "rm:<stage>" (a second reward model,
              e.g. trained on other labels): stop when its held-out mean has been below its best by more
              than `tolerance` for `patience` evaluations in a row while the proxy's mean is above what it
              was at that best (the two have diverged)
The rule sees the metrics of every evaluation in order; its memory is not checkpointed (a resumed run
starts tracking again).
"""

import math

import ml_collections


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.kl_budget = 0.0  # nats per sequence; 0 disables
  c.check = ""  # "" | "gold" | "rm:<stage>"
  c.patience = 2  # evaluations in a row of divergence before stopping
  c.tolerance = 0.0  # how far below its best the check score must fall to count
  return c


class StopRule:
  """rule(step, metrics) -> a reason to stop, or None."""

  def __init__(self, cfg):
    self.cfg = cfg
    self.best, self.proxy_at_best, self.bad = -math.inf, -math.inf, 0

  def __call__(self, step: int, metrics: dict) -> str | None:
    kl = metrics.get("val/kl_seq")
    if self.cfg.kl_budget and kl is not None and kl > self.cfg.kl_budget:
      return f"held-out KL {kl:.3g} nats exceeds the budget rlhf.stop.kl_budget={self.cfg.kl_budget}"
    if not self.cfg.check or "val/check_mean" not in metrics:
      return None
    check, proxy = metrics["val/check_mean"], metrics["val/reward_mean"]
    if check > self.best:
      self.best, self.proxy_at_best, self.bad = check, proxy, 0
    elif check < self.best - self.cfg.tolerance and proxy > self.proxy_at_best:
      self.bad += 1
    else:
      self.bad = 0
    if self.bad >= self.cfg.patience:
      return (f"held-out {self.cfg.check} score fell to {check:.3g} (best {self.best:.3g}) for {self.bad} "
              f"evaluations while the proxy rose to {proxy:.3g} (from {self.proxy_at_best:.3g}) at step {step}")
    return None
