"""Over-optimisation math: the best-of-n KL formula, the unbiased best-of-n estimator, and the functional-form
fits recovering known parameters from synthetic data."""

import itertools
import math

import numpy as np
import pytest

from llm_jax.posttrain import overoptimization as oo


def test_bon_kl_formula():
  assert oo.bon_kl(1) == 0.0
  assert oo.bon_kl(2) == pytest.approx(math.log(2) - 0.5)
  assert oo.bon_kl(64) == pytest.approx(math.log(64) - 63 / 64)
  # the formula is the KL of the max of n uniform draws (density n u^(n-1) on [0, 1]) from the uniform
  u = (np.arange(200000) + 0.5) / 200000
  n = 8
  assert np.mean(n * u ** (n - 1) * np.log(n * u ** (n - 1))) == pytest.approx(oo.bon_kl(n), abs=1e-3)
  with pytest.raises(ValueError, match="n >= 1"):
    oo.bon_kl(0)


def test_bon_estimator_equals_enumerating_subsets():
  rng = np.random.default_rng(0)
  proxy, gold = rng.normal(size=(3, 7)), rng.normal(size=(3, 7))
  for n in (1, 2, 3, 7):
    want = np.mean([np.mean([g[list(s)][np.argmax(p[list(s)])] for s in itertools.combinations(range(7), n)])
                    for p, g in zip(proxy, gold)])
    assert oo.bon_expectation(proxy, gold, n) == pytest.approx(want)
  assert oo.bon_weights(7, 3).sum() == pytest.approx(1.0)


def test_fits_recover_known_parameters():
  rng = np.random.default_rng(1)
  d = np.sqrt([oo.bon_kl(n) for n in (2, 4, 8, 16, 32, 64, 128, 256)])
  got = oo.fit_form("bon", d, oo.bon_form(d, 1.2, 0.4) + rng.normal(0, 0.005, d.shape))
  assert (got["alpha"], got["beta"]) == pytest.approx((1.2, 0.4), abs=0.03)
  assert got["peak_d"] == pytest.approx(1.2 / 0.8, rel=0.05) and got["peak_kl"] == pytest.approx(2.25, rel=0.1)
  d = np.linspace(0.05, 6.0, 30)
  got = oo.fit_form("rl", d, oo.rl_form(d, 0.8, 0.5) + rng.normal(0, 0.005, d.shape))
  assert (got["alpha"], got["beta"]) == pytest.approx((0.8, 0.5), abs=0.02)
  assert got["peak_d"] == pytest.approx(math.exp(0.8 / 0.5 - 1), rel=0.05)
  assert got["peak_score"] == pytest.approx(0.5 * math.exp(0.6), rel=0.05)  # R(d*) = beta d*
  rising = oo.fit_form("bon", d, 0.3 * d + 0.05 * d * d)  # convex: no peak
  assert rising["peak_d"] is None and rising["beta"] == pytest.approx(-0.05, abs=1e-4)
  with pytest.raises(ValueError, match="at least two points"):
    oo.fit_form("rl", [0.0, 1.0], [0.0, 1.0])


def test_analysis_writes_plots_fits_and_a_report_section(tmp_path):
  import json
  import os
  from llm_jax.posttrain.overopt_analysis import analyse
  wd = str(tmp_path)
  ns = (1, 2, 4, 8, 16, 32, 64)
  points = [{"n": n, "kl": oo.bon_kl(n), "proxy": 0.5 * n ** 0.3,
             "gold": 0.1 + float(oo.bon_form(math.sqrt(oo.bon_kl(n)), 1.0, 0.5))} for n in ns]
  bon = {"points": points, "samples": [{"prompt": "q", "replies": ["a", "b"], "proxy": [0.1, 0.9], "gold": [1.0, 0.0]}]}
  os.makedirs(os.path.join(wd, "metrics"))
  with open(os.path.join(wd, "metrics", "rl.jsonl"), "w") as f:
    for step, d in enumerate(np.linspace(0.0, 4.0, 9)):
      f.write(json.dumps({"step": step, "val/kl_seq": d * d, "val/reward_mean": d,
                          "val/gold_mean": float(oo.rl_form(d, 0.6, 0.4))}) + "\n")
  got = analyse(wd, bon, "rl")
  assert got["bon"]["fit"]["alpha"] == pytest.approx(1.0, abs=1e-3) and got["bon"]["start"]["gold"] == 0.1
  assert got["rl"]["fit"]["peak_kl"] == pytest.approx(math.exp(0.6 / 0.4 - 1) ** 2, rel=1e-3)
  assert os.path.exists(os.path.join(wd, "plots", "overoptimization_rl.png"))
  with open(os.path.join(wd, "sections", "overoptimization.md")) as f:
    section = f.read()
  assert "| bon | 7 |" in section and "[best-of-2: proxy 0.900, gold 0.000]" in section
