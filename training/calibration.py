"""Platt scaling and the calibration intercept/slope, both one small logistic fit.

Calibration is fitted on held-out raw scores (never on the rows the trees saw) and stored as
JSON: ``p = 1 / (1 + exp(-(intercept + slope * raw)))``.
"""

from __future__ import annotations

import numpy as np


def _logistic(x: np.ndarray, y: np.ndarray, *, offset: np.ndarray | None = None,
              fit_slope: bool = True, iterations: int = 50) -> tuple[float, float]:
    """Maximum-likelihood ``logit P(y) = a + b*x (+ offset)`` by Newton's method."""
    off = np.zeros_like(x) if offset is None else offset
    a, b = 0.0, 1.0
    for _ in range(iterations):
        z = a + (b * x if fit_slope else 0.0) + off
        p = 1.0 / (1.0 + np.exp(-z))
        w = p * (1 - p) + 1e-12
        r = y - p
        if fit_slope:
            g = np.array([r.sum(), (r * x).sum()])
            h = np.array([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]])
            try:
                step = np.linalg.solve(h, g)
            except np.linalg.LinAlgError:  # constant x: the slope is not identified
                step = np.linalg.lstsq(h, g, rcond=None)[0]
            a, b = a + step[0], b + step[1]
            if np.abs(step).max() < 1e-10:
                break
        else:
            step_a = r.sum() / w.sum()
            a += step_a
            if abs(step_a) < 1e-10:
                break
    return float(a), float(b)


def fit_platt(raw: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Platt scaling of raw scores against held-out labels."""
    a, b = _logistic(np.asarray(raw, float), np.asarray(y, float))
    return {"intercept": a, "slope": b}


def fit_intercept(raw: np.ndarray, y: np.ndarray, slope: float) -> dict[str, float]:
    """Recalibration-in-the-large: a new intercept with the slope kept."""
    raw = np.asarray(raw, float)
    intercept, _ = _logistic(np.zeros_like(raw), np.asarray(y, float), offset=slope * raw,
                             fit_slope=False)
    return {"intercept": intercept, "slope": float(slope)}


def calibration_intercept_slope(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Calibration-in-the-large (slope fixed at 1) and calibration slope, on the logit scale."""
    p = np.clip(np.asarray(p, float), 1e-9, 1 - 1e-9)
    lp = np.log(p / (1 - p))
    y = np.asarray(y, float)
    intercept, _ = _logistic(np.zeros_like(lp), y, offset=lp, fit_slope=False)
    _, slope = _logistic(lp, y)
    return intercept, slope
