"""Validated patient record (or a training frame) -> model rows, one per presenting complaint.

One encoding for serving and training: categories become their position in the contract's
``allowed`` tuple, booleans 1.0/0.0, anything not recorded NaN (LightGBM routes missing values
natively). Derived columns are computed here and only here. A finding whose ``applies_when``
does not hold (running analysis for a patient not recorded as a runner) is set aside as not
recorded, for training and serving alike: the model only ever learns it where it applies
(:func:`cds.safety.not_applicable` tells the clinician).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .features import BY_NAME, MODEL_COLUMNS, ROWS, Feature, column_feature

if TYPE_CHECKING:
    import pandas as pd

_ROW_COLUMN = ROWS.row_column or "complaint"
_LEFT, _RIGHT = "hip_abduction_left_nm_per_kg", "hip_abduction_right_nm_per_kg"
_SIDES = BY_NAME["side"].allowed
_CODES: dict[str, dict[str, float]] = {
    f.name: {v: float(i) for i, v in enumerate(f.allowed)}
    for f in BY_NAME.values() if f.kind == "category"
}


_RECORDED: dict[str, Feature] = {
    f.name: f for f in BY_NAME.values() if f.role in ("model", "input")}
_CONDITIONAL: list[tuple[int, str, float]] = [  # (model column, condition field, wanted code)
    (j, f.applies_when[0], _CODES[f.applies_when[0]][f.applies_when[1]])
    for j, f in enumerate(column_feature(c) for c in MODEL_COLUMNS)
    if f.applies_when is not None and f.name == MODEL_COLUMNS[j]]


def encode_value(f: Feature, value: Any) -> float:
    """One recorded value as the model sees it (NaN when not recorded)."""
    if value is None:
        return np.nan
    if f.kind == "category":
        return _CODES[f.name][value]
    return float(value)


def _derive(raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Derived strength columns from both sides' torque and the side of pain.

    Painful side's torque (the weaker side when pain is bilateral or the side is unknown) and its
    deficit against the other side, in percent of the other side.
    """
    left, right, side = raw[_LEFT], raw[_RIGHT], raw["side"]
    weaker = np.fmin(left, right)
    stronger = np.fmax(left, right)
    is_left = side == _SIDES.index("left")
    is_right = side == _SIDES.index("right")
    symptomatic = np.where(is_left, left, np.where(is_right, right, weaker))
    other = np.where(is_left, right, np.where(is_right, left, stronger))
    asymmetry = 100.0 * (other - symptomatic) / other  # NaN in, NaN out; torque is > 0
    return {"hip_abduction_symptomatic_nm_per_kg": symptomatic,
            "hip_abduction_asymmetry_pct": asymmetry}


def model_matrix(raw: Mapping[str, Any], n: int) -> np.ndarray:
    """Assemble the model matrix (n, len(MODEL_COLUMNS)) from encoded raw columns.

    ``raw`` maps record field names (and ``complaint``) to float arrays of length ``n`` or to
    scalars shared by every row; a field that is absent is taken as not recorded.
    """
    derived = _derive({name: np.asarray(raw.get(name, np.nan), dtype=float)
                       for name in (_LEFT, _RIGHT, "side")})
    X = np.full((n, len(MODEL_COLUMNS)), np.nan)
    for j, col in enumerate(MODEL_COLUMNS):
        value = derived[col] if col in derived else raw.get(col)
        if value is not None:
            X[:, j] = value
    for j, field, wanted in _CONDITIONAL:
        applies = np.asarray(raw.get(field, np.nan), dtype=float) == wanted
        X[~np.broadcast_to(applies, (n,)), j] = np.nan
    return X


def rows_from_record(record: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """A validated record -> (complaints, model rows), one row per complaint in record order."""
    complaints: list[str] = list(record[ROWS.name])
    raw: dict[str, Any] = {
        _ROW_COLUMN: np.array([_CODES[ROWS.name][c] for c in complaints], dtype=float)}
    for name, value in record.items():
        f = _RECORDED.get(name)
        if f is not None:
            raw[name] = encode_value(f, value)
    return complaints, model_matrix(raw, len(complaints))


def rows_from_frame(frame: pd.DataFrame) -> np.ndarray:
    """A training frame (one complaint per row, contract column names) -> model matrix.

    Categorical columns may hold strings or pandas categoricals; values outside the contract's
    categories become NaN (validation upstream reports them).
    """
    n = len(frame)
    raw: dict[str, np.ndarray] = {}
    for name in (*MODEL_COLUMNS, _LEFT, _RIGHT):
        if name not in frame.columns:
            continue
        f = column_feature(name)
        if f.kind == "category":
            import pandas as pd  # only here: serving never builds frames

            codes = frame[name].astype(pd.CategoricalDtype(list(f.allowed))).cat.codes
            raw[name] = np.where(codes.to_numpy() < 0, np.nan, codes.to_numpy()).astype(float)
        else:
            raw[name] = frame[name].to_numpy(dtype=float, na_value=np.nan)
    return model_matrix(raw, n)
