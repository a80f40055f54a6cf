"""Fit the LightGBM model: contract constraints, early stopping, size chosen by validation.

The data are split (seeded, stratified by complaint and label) into training (70%), validation
(15%: early stopping and model size) and calibration (15%: Platt scaling on held-out raw
scores). The signal is modest, so the model is kept as small as validation allows: among the
candidate leaf counts, the smallest model (trees x leaves) whose validation log-loss is within
``tolerance`` of the best wins; every extra tree costs explanation time at serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np

from cds.errors import UserError
from cds.features import CATEGORICAL_COLUMNS, MODEL_COLUMNS, monotone_constraints

from .calibration import fit_platt

BASE_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.1,
    "min_data_in_leaf": 200,
    "lambda_l2": 1.0,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "max_cat_to_onehot": 4,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}


@dataclass
class Fitted:
    """A fitted booster, its calibration and how its size was chosen."""

    booster: lgb.Booster
    calibration: dict[str, float]
    params: dict[str, Any]
    selection: list[dict[str, Any]] = field(default_factory=list)
    split_sizes: dict[str, int] = field(default_factory=dict)


def split_indices(y: np.ndarray, strata: np.ndarray, seed: int,
                  fractions: tuple[float, float] = (0.70, 0.15)
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/validation/calibration indices."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    keys = strata * 2 + y
    for key in np.unique(keys):
        idx = rng.permutation(np.flatnonzero(keys == key))
        a = round(len(idx) * fractions[0])
        b = a + round(len(idx) * fractions[1])
        for part, chunk in zip(parts, (idx[:a], idx[a:b], idx[b:]), strict=True):
            part.append(chunk)
    train, valid, calib = (np.sort(np.concatenate(p)) for p in parts)
    return train, valid, calib


def _dataset(X: np.ndarray, y: np.ndarray, reference: lgb.Dataset | None = None) -> lgb.Dataset:
    return lgb.Dataset(X, label=y, feature_name=list(MODEL_COLUMNS),
                       categorical_feature=list(CATEGORICAL_COLUMNS), reference=reference,
                       free_raw_data=False)


def candidate_params(overrides: dict[str, Any], *, seed: int, num_threads: int) -> dict[str, Any]:
    """LightGBM parameters of one candidate: the base, the contract's constraints, ``overrides``."""
    return {**BASE_PARAMS, "seed": seed, "num_threads": num_threads,
            "monotone_constraints": monotone_constraints(), "metric": "binary_logloss",
            **overrides}


def choose(candidates: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """The smallest candidate (trees x leaves) within ``tolerance`` of the best validation loss."""
    best_loss = min(c["valid_logloss"] for c in candidates)
    eligible = [c for c in candidates if c["valid_logloss"] <= best_loss + tolerance]
    return min(eligible, key=lambda c: c["trees"] * c["params"]["num_leaves"])


def finish(candidates: list[dict[str, Any]], X: np.ndarray, y: np.ndarray,
           split: tuple[np.ndarray, np.ndarray, np.ndarray], tolerance: float) -> Fitted:
    """Choose among fitted candidates, truncate to the chosen trees, calibrate on held-out rows."""
    train, valid, calib = split
    chosen = choose(candidates, tolerance)
    # keep only the trees early stopping chose, so the artefact is exactly what is served
    booster = lgb.Booster(model_str=chosen["booster"].model_to_string(num_iteration=chosen["trees"]))
    raw_calib = np.asarray(booster.predict(X[calib], raw_score=True))
    if np.ptp(raw_calib) == 0:
        raise UserError(f"the fitted model gives every patient the same score: {len(train)} "
                        f"training rows support no split (at least "
                        f"{chosen['params']['min_data_in_leaf']} rows per leaf); more outcomes "
                        "are needed, or recalibrate the shipped model (cds recalibrate)")
    calibration = fit_platt(raw_calib, y[calib])
    selection = [{"num_leaves": c["params"]["num_leaves"],
                  **{k: c["params"][k] for k in ("learning_rate", "min_data_in_leaf")},
                  "trees": c["trees"], "valid_logloss": c["valid_logloss"], "chosen": c is chosen}
                 for c in candidates]
    return Fitted(booster=booster, calibration=calibration, params=chosen["params"],
                  selection=selection,
                  split_sizes={"train": len(train), "valid": len(valid), "calibration": len(calib)})


def fit(X: np.ndarray, y: np.ndarray, strata: np.ndarray, *, seed: int = 20261124,
        leaves: tuple[int, ...] = (4, 8, 16), tolerance: float = 0.0005,
        max_rounds: int = 2000, early_stopping: int = 50, num_threads: int = 0,
        candidates: list[dict[str, Any]] | None = None, deadline: float | None = None,
        progress: Callable[[str], None] | None = None) -> Fitted:
    """Fit each candidate with early stopping, select the size by validation, calibrate.

    ``candidates`` are parameter overrides (default: one per ``leaves``); with a ``deadline``
    (``time.monotonic()``), no candidate starts after it (the first always runs).
    ``progress`` gets one line per candidate.
    """
    split = split_indices(y, strata, seed)
    train, valid, _ = split
    dtrain = _dataset(X[train], y[train])
    dvalid = _dataset(X[valid], y[valid], reference=dtrain)
    overrides = candidates or [{"num_leaves": n} for n in leaves]
    fitted: list[dict[str, Any]] = []
    for i, override in enumerate(overrides, 1):
        if fitted and deadline is not None and time.monotonic() > deadline:
            if progress:
                progress(f"  time budget spent after {len(fitted)} of {len(overrides)} candidates")
            break
        params = candidate_params(override, seed=seed, num_threads=num_threads)
        booster = lgb.train(params, dtrain, num_boost_round=max_rounds, valid_sets=[dvalid],
                            callbacks=[lgb.early_stopping(early_stopping, verbose=False)])
        loss = float(booster.best_score["valid_0"]["binary_logloss"])
        fitted.append({"trees": int(booster.best_iteration), "valid_logloss": loss,
                       "booster": booster, "params": params})
        if progress:
            best = min(c["valid_logloss"] for c in fitted)
            progress(f"  candidate {i}/{len(overrides)}: " + ", ".join(
                f"{k}={v}" for k, v in override.items()) + f" -> {booster.best_iteration} trees, "
                f"valid log-loss {loss:.5f} (best {best:.5f})")
    return finish(fitted, X, y, split, tolerance)
