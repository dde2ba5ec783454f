"""Reward-model over-optimisation (Gao, Schulman and Hilton, 2022): the math of its measurements.

  best-of-n KL     KL(best-of-n || policy) = log n - (n - 1) / n   (analytic, in nats)
  best-of-n score  from N >= n samples per prompt, the unbiased estimate of the expected gold/proxy
                   score of the proxy's pick among n: with the N samples sorted by proxy score, the
                   i-th smallest is the pick of a random n-subset with probability C(i-1, n-1) / C(N, n)
  functional forms with d = sqrt(KL), scores relative to the start policy's:
                   best-of-n  R(d) = d (alpha - beta d),       peak at d* = alpha / (2 beta)
                   RL         R(d) = d (alpha - beta log d),   peak at d* = exp(alpha / beta - 1)
The fits use scipy's least squares (curve_fit); a fitted beta <= 0 means no peak in sight (None).
"""

import math
from collections.abc import Sequence

import numpy as np


def bon_kl(n: int) -> float:
  """KL of best-of-n sampling from the policy it samples, in nats."""
  if n < 1:
    raise ValueError(f"best-of-n needs n >= 1, got {n}")
  return math.log(n) - (n - 1) / n


def bon_weights(N: int, n: int) -> np.ndarray:
  """float64[N]: probability that the i-th smallest of N (by proxy) is the largest of a random n-subset."""
  if not 1 <= n <= N:
    raise ValueError(f"best-of-{n} needs 1 <= n <= N={N} samples")
  total = math.comb(N, n)
  return np.array([math.comb(i, n - 1) / total for i in range(N)], np.float64)


def bon_expectation(proxy_MxN: np.ndarray, values_MxN: np.ndarray, n: int) -> float:
  """Mean over the M prompts of the expected value (e.g. gold score) of the proxy's pick among n of the
  N samples (unbiased; ties in the proxy break by sample order)."""
  proxy_MxN, values_MxN = np.asarray(proxy_MxN, np.float64), np.asarray(values_MxN, np.float64)
  order_MxN = np.argsort(proxy_MxN, axis=1, kind="stable")
  sorted_MxN = np.take_along_axis(values_MxN, order_MxN, axis=1)
  return float((sorted_MxN @ bon_weights(proxy_MxN.shape[1], n)).mean())


def bon_form(d, alpha, beta):
  return d * (alpha - beta * d)


def rl_form(d, alpha, beta):
  d = np.asarray(d, np.float64)
  return d * (alpha - beta * np.log(np.maximum(d, 1e-12)))


FORMS = {"bon": bon_form, "rl": rl_form}


def peak(kind: str, alpha: float, beta: float) -> tuple[float, float] | None:
  """(d*, R(d*)) of a fitted form, or None when it has no maximum (beta <= 0)."""
  if beta <= 0:
    return None
  if kind == "bon":
    d = alpha / (2 * beta)
    return (d, float(bon_form(d, alpha, beta))) if d > 0 else None
  d = math.exp(min(alpha / beta - 1.0, 700.0))
  return d, float(rl_form(d, alpha, beta))


def fit_form(kind: str, d: Sequence[float], r: Sequence[float]) -> dict:
  """Least-squares alpha, beta of FORMS[kind] to scores r (relative to d = 0) at d = sqrt(KL); with
  the peak (kl = d*^2) when there is one."""
  from scipy.optimize import curve_fit  # pylint: disable=g-import-not-at-top
  d, r = np.asarray(d, np.float64), np.asarray(r, np.float64)
  keep = d > 0
  if keep.sum() < 2:
    raise ValueError(f"fitting the {kind} form needs at least two points with KL > 0, got {int(keep.sum())}")
  d, r = d[keep], r[keep]
  slope = float(np.sum(d * r) / np.sum(d * d))  # the linear term's least-squares start
  (alpha, beta), _ = curve_fit(FORMS[kind], d, r, p0=(slope, 0.0), maxfev=20000)
  top = peak(kind, float(alpha), float(beta))
  out = {"alpha": float(alpha), "beta": float(beta), "peak_d": None, "peak_kl": None, "peak_score": None}
  if top is not None:
    out.update(peak_d=top[0], peak_kl=top[0] ** 2, peak_score=top[1])
  return out
