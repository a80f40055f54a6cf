"""Honest performance figures: discrimination with CIs, Brier score, calibration.

Every model is measured on held-out data beside two references measured on the same rows: the
ceiling (the data-generating process's own probability, when the data are simulated and carry
``p_true``) and a logistic-regression baseline trained on the same training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cds.features import CATEGORICAL_COLUMNS, MODEL_COLUMNS

from .calibration import calibration_intercept_slope


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC as the Mann-Whitney statistic (ties count one half), equal to sklearn's
    ``roc_auc_score`` but without its input checks, which dominate a bootstrap's cost."""
    y = np.asarray(y, float)
    positives = float(y.sum())
    negatives = len(y) - positives
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auroc_ci(y: np.ndarray, p: np.ndarray, *, reps: int = 200, seed: int = 0
             ) -> tuple[float, float, float]:
    """AUROC with a percentile bootstrap 95% CI."""
    rng = np.random.default_rng(seed)
    point = auroc(y, p)
    stats = []
    n = len(y)
    for _ in range(reps):
        idx = rng.integers(0, n, n)
        if y[idx].min() != y[idx].max():
            stats.append(auroc(y[idx], p[idx]))
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return point, float(lo), float(hi)


def metrics(y: np.ndarray, p: np.ndarray, *, reps: int = 200) -> dict[str, Any]:
    """AUROC (95% CI), Brier score, calibration intercept and slope, prevalence."""
    auc, lo, hi = auroc_ci(y, p, reps=reps)
    intercept, slope = calibration_intercept_slope(p, y)
    return {"n": len(y), "prevalence": round(float(np.mean(y)), 4),
            "auroc": round(auc, 4), "auroc_ci95": [round(lo, 4), round(hi, 4)],
            "brier": round(float(brier_score_loss(y, p)), 4),
            "calibration_intercept": round(intercept, 4),
            "calibration_slope": round(slope, 4)}


def logistic_baseline(X: np.ndarray, y: np.ndarray) -> Pipeline:
    """One-hot categoricals, median-imputed numerics with missing indicators, L2 logistic."""
    cat = [MODEL_COLUMNS.index(c) for c in CATEGORICAL_COLUMNS]
    num = [j for j in range(len(MODEL_COLUMNS)) if j not in cat]
    pre = ColumnTransformer([
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), cat),
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                            keep_empty_features=True),
                              StandardScaler()), num),
    ])
    model = Pipeline([("pre", pre), ("lr", LogisticRegression(max_iter=2000))])
    return model.fit(X, y)


def by_group(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """AUROC and calibration per subgroup (groups with both outcomes present)."""
    out = {}
    for g in sorted({str(v) for v in groups}):
        mask = groups.astype(str) == g
        if mask.sum() >= 200 and 0 < y[mask].mean() < 1:
            out[g] = metrics(y[mask], p[mask], reps=100)
    return out
