"""The predetermined change control plan: what may change, how it is tested, what blocks it.

The plan is a versioned JSON file beside the registry (``models/change_control.json``); the
promotion gate (:mod:`training.gate`) reads its margins from it and records the plan's version
and SHA-256 with every decision, so a promotion can be traced to the rule it was judged by.
Without a file the defaults of :class:`training.gate.Margins` apply (and the history says so).
Margins given on the command line override the plan for one promotion and are recorded as a
deviation.

The statistics (:func:`paired_differences`): candidate and production are scored on the same
rows; each bootstrap resample (the same rows for both) gives the AUROC difference and the
difference in absolute calibration-in-the-large (|observed - expected|, percentage points);
the percentile 95% CI of each is reported, and the AUROC rule is one of non-inferiority: the
lower bound of the difference's CI must not fall below ``-margin``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import UserError

from .evaluate import auroc

PLAN_FILE = "change_control.json"


def load_plan(root: Path) -> dict[str, Any] | None:
    """The plan in ``root`` (``None`` when there is none), with its SHA-256 and path."""
    path = root / PLAN_FILE
    if not path.is_file():
        return None
    raw = path.read_bytes()
    try:
        plan = json.loads(raw)
    except ValueError as e:
        raise UserError(f"{path}: not JSON ({e})") from e
    if not isinstance(plan, dict) or not isinstance(plan.get("margins"), dict) \
            or "version" not in plan:
        raise UserError(f"{path}: a change control plan has 'version' and 'margins'")
    return {**plan, "sha256": hashlib.sha256(raw).hexdigest(), "path": str(path)}


def plan_margins(plan: dict[str, Any] | None, margins_type: type) -> Any:
    """The plan's margins as ``margins_type`` (a dataclass); unknown keys are refused."""
    if plan is None:
        return margins_type()
    known = {f.name for f in fields(margins_type)}
    unknown = sorted(set(plan["margins"]) - known)
    if unknown:
        raise UserError(f"{plan['path']}: unknown margin(s) {', '.join(unknown)}; known: "
                        f"{', '.join(sorted(known))}")
    return margins_type(**plan["margins"])


def paired_differences(y: np.ndarray, p_candidate: np.ndarray, p_production: np.ndarray, *,
                       reps: int = 200, seed: int = 0) -> dict[str, Any]:
    """Candidate minus production on the same resamples: AUROC and |observed - expected| (pp)."""
    y = np.asarray(y, float)
    rng = np.random.default_rng(seed)
    n = len(y)

    def gap(yy: np.ndarray, pp: np.ndarray) -> float:
        return abs(100 * float(yy.mean() - pp.mean()))

    d_auc, d_gap = [], []
    for _ in range(reps):
        idx = rng.integers(0, n, n)
        yy = y[idx]
        d_gap.append(gap(yy, p_candidate[idx]) - gap(yy, p_production[idx]))
        if yy.min() != yy.max():
            d_auc.append(auroc(yy, p_candidate[idx]) - auroc(yy, p_production[idx]))

    def ci(values: list[float]) -> list[float]:
        if not values:
            return [float("nan"), float("nan")]
        lo, hi = np.percentile(values, [2.5, 97.5])
        return [round(float(lo), 4), round(float(hi), 4)]

    return {"reps": reps,
            "auroc_difference": round(auroc(y, p_candidate) - auroc(y, p_production), 4),
            "auroc_difference_ci95": ci(d_auc),
            "calibration_gap_difference_pp": round(gap(y, p_candidate) - gap(y, p_production), 2),
            "calibration_gap_difference_ci95": ci(d_gap)}
