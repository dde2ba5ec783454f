"""The over-optimisation analysis: gold and proxy scores against sqrt(KL) for best-of-n and RL, Gao et al.'s
functional forms fitted to the gold scores, their peaks, and replies from the over-optimised end.

Writes plots/overoptimization_{bon,rl}.png, data/overoptimization/analysis.json,
samples/overoptimization.txt and sections/overoptimization.md (appended to report.md).
"""

import json
import os

import numpy as np

from llm_jax.posttrain import overoptimization
from llm_jax.train.checkpoint import write_json
from llm_jax.train.metrics import read_metrics


def rl_points(workdir: str, stage: str) -> list[dict]:
  """(kl, proxy, gold) of each held-out evaluation of an RL stage (metrics/<stage>.jsonl)."""
  rows = read_metrics(os.path.join(workdir, "metrics", f"{stage}.jsonl"))
  return [{"step": r["step"], "kl": max(r["val/kl_seq"], 0.0), "proxy": r["val/reward_mean"],
           "gold": r["val/gold_mean"]} for r in rows if "val/kl_seq" in r and "val/gold_mean" in r]


def fit_points(kind: str, points: list[dict]) -> dict:
  """Gold and proxy relative to the start (the point of least KL), sqrt(KL), and the gold fit."""
  start = min(points, key=lambda p: p["kl"])
  d = np.sqrt([p["kl"] for p in points])
  gold = np.array([p["gold"] - start["gold"] for p in points])
  proxy = np.array([p["proxy"] - start["proxy"] for p in points])
  try:
    fit = overoptimization.fit_form(kind, d, gold)
  except (ValueError, RuntimeError) as e:  # too few points, or no convergence
    fit = {"error": str(e)}
  best = int(np.argmax(gold))
  return {"d": d.tolist(), "gold": gold.tolist(), "proxy": proxy.tolist(), "fit": fit,
          "observed_peak": {"kl": float(d[best] ** 2), "gold": float(gold[best])},
          "start": {"gold": start["gold"], "proxy": start["proxy"]}}


def plot(path: str, result: dict, kind: str, title: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, gold_ax = plt.subplots(figsize=(6, 3.8))
  proxy_ax = gold_ax.twinx()
  gold_ax.set_zorder(proxy_ax.get_zorder() + 1)  # gold (the point of the plot) drawn over the proxy
  gold_ax.patch.set_visible(False)
  order = np.argsort(result["d"])
  d = np.asarray(result["d"])[order]
  gold_ax.plot(d, np.asarray(result["gold"])[order], "o", color="tab:orange", label="gold (measured)")
  proxy_ax.plot(d, np.asarray(result["proxy"])[order], "s--", color="tab:blue", alpha=0.7, label="proxy")
  fit = result["fit"]
  if "alpha" in fit:
    grid = np.linspace(1e-3, max(d.max(), fit["peak_d"] or 0) * 1.05, 200)
    gold_ax.plot(grid, overoptimization.FORMS[kind](grid, fit["alpha"], fit["beta"]), "-", color="tab:orange",
                 label=f"gold fit: alpha {fit['alpha']:.3g}, beta {fit['beta']:.3g}")
    if fit["peak_d"] is not None:
      gold_ax.axvline(fit["peak_d"], color="gray", ls=":", label=f"fitted peak, KL {fit['peak_kl']:.3g}")
  gold_ax.set_xlabel("sqrt(KL from the start policy)  [sqrt(nats)]")
  gold_ax.set_ylabel("gold score - start", color="tab:orange")
  proxy_ax.set_ylabel("proxy score - start", color="tab:blue")
  lines = gold_ax.get_legend_handles_labels()[0] + proxy_ax.get_legend_handles_labels()[0]
  gold_ax.legend(lines, [h.get_label() for h in lines], fontsize=7, loc="best")
  gold_ax.set_title(title)
  gold_ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _bon_examples(bon: dict, k: int) -> list[str]:
  """The proxy's pick among all N samples for the first k prompts, with both scores."""
  out = []
  for s in bon["samples"][:k]:
    i = int(np.argmax(s["proxy"]))
    out.append(f"### {s['prompt']}\n[best-of-{len(s['replies'])}: proxy {s['proxy'][i]:.3f}, gold {s['gold'][i]:.3f}]\n"
               f"{s['replies'][i]}\n")
  return out


def _rl_examples(workdir: str, stage: str, k: int) -> list[str]:
  """Held-out replies of the RL stage's last evaluation (samples/<stage>_eval.jsonl)."""
  path = os.path.join(workdir, "samples", f"{stage}_eval.jsonl")
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    rows = [json.loads(line) for line in f if line.strip()]
  last = [r for r in rows if r["step"] == rows[-1]["step"]][:k]
  return [f"### {r['prompt']}\n[RL step {r['step']}: proxy {r['proxy']:.3f}]\n{r['reply']}\n" for r in last]


def analyse(workdir: str, bon: dict | None, rl_stage: str | None, examples: int = 4) -> dict:
  """Fit, plot and write everything (see the module docstring); returns the analysis dict."""
  out, lines = {}, ["## Reward-model over-optimisation", "",
                    "Gold and proxy scores (relative to the start policy) against sqrt(KL) from it; the gold "
                    "fits are Gao et al.'s forms d(alpha - beta d) (best-of-n) and d(alpha - beta log d) (RL).", "",
                    "| method | points | alpha | beta | fitted peak KL | fitted peak gold | best measured gold (KL) |",
                    "|---|---|---|---|---|---|---|"]
  os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
  for kind, points, title in (("bon", bon["points"] if bon else [], "best-of-n against the proxy"),
                              ("rl", rl_points(workdir, rl_stage) if rl_stage else [], "RL (no KL penalty)")):
    if len(points) < 3:
      continue
    result = out[kind] = fit_points(kind, points)
    plot(os.path.join(workdir, "plots", f"overoptimization_{kind}.png"), result, kind, title)
    fit, seen = result["fit"], result["observed_peak"]
    fmt = lambda v: "-" if v is None else f"{v:.3g}"
    lines.append(f"| {kind} | {len(points)} | {fmt(fit.get('alpha'))} | {fmt(fit.get('beta'))} | "
                 f"{fmt(fit.get('peak_kl'))} | {fmt(fit.get('peak_score'))} | {seen['gold']:.3g} ({seen['kl']:.3g}) |")
  lines += [""] + [f"![overoptimization_{k}](plots/overoptimization_{k}.png)" for k in out] + [""]
  texts = _bon_examples(bon, examples) if bon else []
  texts += _rl_examples(workdir, rl_stage, examples) if rl_stage else []
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  with open(os.path.join(workdir, "samples", "overoptimization.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(texts))
  if texts:
    lines += ["Replies from the over-optimised end (samples/overoptimization.txt):", "", "```",
              "\n".join(texts).strip(), "```", ""]
  os.makedirs(os.path.join(workdir, "data", "overoptimization"), exist_ok=True)
  write_json(os.path.join(workdir, "data", "overoptimization", "analysis.json"), out)
  os.makedirs(os.path.join(workdir, "sections"), exist_ok=True)
  with open(os.path.join(workdir, "sections", "overoptimization.md"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines))
  return out
