"""The numbers behind an evaluation: curves, decision curve, subgroups with bootstrap CIs.

Everything here is plain arrays in, plain data out (no plotting), so the HTML report, the model
card, ``model_facts.json`` and the promotion gate all read the same figures.

* Decision curve (Vickers & Elkin 2006): net benefit ``TP/n - FP/n * t/(1-t)`` of acting on the
  model at threshold probability ``t``, against treating everyone and no one, over
  :data:`THRESHOLDS` (5-50%): below 5% almost everyone would be examined anyway; above 50% a
  hip-focused programme would be withheld from most patients who need it.
* Subgroups: sex, age band, complaint and care setting, each with a percentile bootstrap 95% CI
  of AUROC and of calibration-in-the-large (observed minus expected events, in percentage points).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

from .calibration import calibration_intercept_slope
from .evaluate import auroc, metrics
from .schema import COMPLAINT

THRESHOLDS = np.round(np.arange(0.05, 0.501, 0.01), 2)
AGE_BANDS = ((12, 18, "12-17"), (18, 30, "18-29"), (30, 45, "30-44"), (45, 60, "45-59"),
             (60, 200, "60+"))  # adolescents (12-17) are a subgroup of their own
SUBGROUPS = ("sex", "age_band", COMPLAINT, "care_setting")
MIN_SUBGROUP = 50


def age_band(age: pd.Series) -> pd.Series:
    """Age bands of the subgroup table."""
    labels = [b[2] for b in AGE_BANDS]
    bins = [AGE_BANDS[0][0], *(b[1] for b in AGE_BANDS)]
    return pd.cut(age, bins=bins, right=False, labels=labels).astype(object)


def subgroup_labels(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Dimension -> the group of each row (string; ``"not recorded"`` when missing)."""
    out = {}
    for dim in SUBGROUPS:
        if dim == "age_band":
            values = age_band(frame["age_years"])
        elif dim in frame.columns:
            values = frame[dim].astype(object)
        else:
            continue
        out[dim] = values.where(values.notna(), "not recorded").astype(str).to_numpy()
    return out


def roc_points(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr, _ = roc_curve(y, p)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def pr_points(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    precision, recall, _ = precision_recall_curve(y, p)
    return {"precision": precision.tolist(), "recall": recall.tolist(),
            "average_precision": float(average_precision_score(y, p))}


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Observed rate (Wilson 95% CI) against mean predicted probability in quantile bins."""
    order = np.argsort(p, kind="stable")
    rows = []
    for chunk in np.array_split(order, bins):
        if not len(chunk):
            continue
        n, k = len(chunk), float(y[chunk].sum())
        rate = k / n
        z = 1.96
        centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        rows.append({"predicted": float(p[chunk].mean()), "observed": rate,
                     "lo": float(centre - half), "hi": float(centre + half), "n": n})
    intercept, slope = calibration_intercept_slope(p, y)
    return {"bins": rows, "intercept": intercept, "slope": slope}


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> list[float]:
    """Net benefit of acting when ``p >= t`` at each threshold."""
    n = len(y)
    out = []
    for t in thresholds:
        act = p >= t
        tp = float((act & (y == 1)).sum())
        fp = float((act & (y == 0)).sum())
        out.append(tp / n - fp / n * t / (1 - t))
    return out


def decision_curve(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    prevalence = float(np.mean(y))
    return {"thresholds": THRESHOLDS.tolist(), "model": net_benefit(y, p),
            "treat_all": [prevalence - (1 - prevalence) * t / (1 - t) for t in THRESHOLDS],
            "treat_none": [0.0] * len(THRESHOLDS)}


def _bootstrap(y: np.ndarray, p: np.ndarray, reps: int, rng: np.random.Generator
               ) -> tuple[list[float], list[float]]:
    aucs, gaps = [], []
    n = len(y)
    for _ in range(reps):
        idx = rng.integers(0, n, n)
        yy, pp = y[idx], p[idx]
        gaps.append(100 * float(yy.mean() - pp.mean()))
        if yy.min() != yy.max():
            aucs.append(auroc(yy, pp))
    return aucs, gaps


def _ci(values: list[float]) -> list[float]:
    if not values:
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def group_figures(y: np.ndarray, p: np.ndarray, *, reps: int, seed: int) -> dict[str, Any]:
    """n, prevalence, AUROC and observed-minus-expected (pp), each with a bootstrap 95% CI."""
    rng = np.random.default_rng(seed)
    aucs, gaps = _bootstrap(y, p, reps, rng)
    both = 0 < y.mean() < 1
    return {"n": len(y), "prevalence": round(float(y.mean()), 4),
            "mean_predicted": round(float(p.mean()), 4),
            "auroc": round(auroc(y, p), 4) if both else None,
            "auroc_ci95": _ci(aucs) if both else None,
            "observed_minus_expected_pp": round(100 * float(y.mean() - p.mean()), 2),
            "observed_minus_expected_ci95": _ci(gaps)}


def subgroup_table(y: np.ndarray, p: np.ndarray, groups: dict[str, np.ndarray], *,
                   reps: int = 200, seed: int = 0, min_n: int = MIN_SUBGROUP
                   ) -> dict[str, dict[str, Any]]:
    """Per dimension and group, :func:`group_figures` (groups smaller than ``min_n`` get n only).

    The bootstrap seed depends on the dimension and group only, so two models evaluated on the
    same data are resampled identically (paired).
    """
    out: dict[str, dict[str, Any]] = {}
    for d, (dim, labels) in enumerate(groups.items()):
        out[dim] = {}
        for g_i, g in enumerate(sorted(set(labels))):
            mask = labels == g
            if mask.sum() < min_n:
                out[dim][g] = {"n": int(mask.sum()), "too_small": True}
                continue
            out[dim][g] = group_figures(y[mask], p[mask], reps=reps,
                                        seed=seed + 1000 * d + g_i)
    return out


def evaluation_figures(y: np.ndarray, p: np.ndarray, frame: pd.DataFrame, *, reps: int = 200,
                       seed: int = 0) -> dict[str, Any]:
    """Every figure of one model on one dataset (curves, decision curve, subgroups)."""
    return {"overall": {**metrics(y, p, reps=reps), **group_figures(y, p, reps=reps, seed=seed)},
            "calibration": calibration_bins(y, p),
            "roc": roc_points(y, p), "pr": pr_points(y, p),
            "decision_curve": decision_curve(y, p),
            "subgroups": subgroup_table(y, p, subgroup_labels(frame), reps=reps, seed=seed)}
