"""Record -> model rows: one per complaint, one encoding for serving and training."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from cds.features import BY_NAME, COMPLAINTS, MODEL_COLUMNS
from cds.intake import encode_value, model_matrix, rows_from_frame, rows_from_record
from cds.norms import abduction_norm_nm_per_kg

COL = {c: j for j, c in enumerate(MODEL_COLUMNS)}
BASE = {"age_years": 30, "sex": "female"}
NORM_F30 = abduction_norm_nm_per_kg("female", 30)


def test_one_row_per_complaint_in_record_order() -> None:
    complaints, X = rows_from_record({**BASE, "complaints": ["lbp", "pfp"]})
    assert complaints == ["lbp", "pfp"]
    assert X.shape == (2, len(MODEL_COLUMNS))
    assert list(X[:, COL["complaint"]]) == [2.0, 0.0]


def test_painful_side_torque_and_deficit_against_the_other_side() -> None:
    _, X = rows_from_record({**BASE, "complaints": ["pfp"], "side": "right",
                             "hip_abduction_left_nm_per_kg": 1.6,
                             "hip_abduction_right_nm_per_kg": 1.2})
    assert X[0, COL["hip_abduction_pct_of_norm"]] == pytest.approx(100 * 1.2 / NORM_F30)
    assert X[0, COL["hip_abduction_asymmetry_pct"]] == pytest.approx(25.0)


def test_bilateral_pain_uses_the_weaker_side() -> None:
    _, X = rows_from_record({**BASE, "complaints": ["lbp"], "side": "bilateral",
                             "hip_abduction_left_nm_per_kg": 1.0,
                             "hip_abduction_right_nm_per_kg": 1.25})
    assert X[0, COL["hip_abduction_pct_of_norm"]] == pytest.approx(100 * 1.0 / NORM_F30)
    assert X[0, COL["hip_abduction_asymmetry_pct"]] == pytest.approx(20.0)


def test_unrecorded_findings_are_missing_not_zero() -> None:
    _, X = rows_from_record({**BASE, "complaints": ["itbs"], "side": "left",
                             "hip_abduction_left_nm_per_kg": 1.4})
    assert X[0, COL["hip_abduction_pct_of_norm"]] == pytest.approx(100 * 1.4 / NORM_F30)
    assert np.isnan(X[0, COL["hip_abduction_asymmetry_pct"]])
    assert np.isnan(X[0, COL["trendelenburg_sign"]])


def test_training_frames_encode_exactly_like_records() -> None:
    record = {**BASE, "complaints": ["itbs"], "side": "left", "activity_profile": "runner",
              "trendelenburg_sign": True, "hip_abduction_left_nm_per_kg": 1.3,
              "hip_abduction_right_nm_per_kg": 1.5, "single_leg_squat_knee_fppa_deg": 12.5}
    _, from_record = rows_from_record(record)
    frame = pd.DataFrame([{**{k: v for k, v in record.items() if k != "complaints"},
                           "complaint": "itbs", "trendelenburg_sign": 1.0}])
    np.testing.assert_array_equal(rows_from_frame(frame), from_record)


def _record_as_columns(record: dict[str, Any]) -> np.ndarray:
    """The record through the vectorised path (training, monitoring): columns of length n."""
    complaints = record["complaints"]
    raw: dict[str, Any] = {"complaint": np.array([COMPLAINTS.index(c) for c in complaints],
                                                 dtype=float)}
    for name, value in record.items():
        f = BY_NAME.get(name)
        if f is not None and f.role in ("model", "input"):
            raw[name] = encode_value(f, value)
    return model_matrix(raw, len(complaints))


def _random_record(rng: np.random.Generator) -> dict[str, Any]:
    """Any subset of the contract's recorded fields, each value drawn within its limits
    (a side's torque, force in N and force in kgf each present or not: the torque wins)."""
    record: dict[str, Any] = {
        "complaints": list(rng.permutation(COMPLAINTS)[: rng.integers(1, 4)])}
    for f in BY_NAME.values():
        if f.role not in ("model", "input") or rng.random() < 0.4:
            continue
        if f.kind == "category":
            record[f.name] = str(rng.choice(list(f.allowed)))
        elif f.kind == "boolean":
            record[f.name] = bool(rng.random() < 0.5)
        elif f.kind == "integer":
            record[f.name] = int(rng.integers(int(f.minimum or 0), int(f.maximum or 100) + 1))
        else:
            record[f.name] = float(rng.uniform(f.minimum or 0.0, f.maximum or 100.0))
    return record


def test_record_rows_are_bit_identical_to_the_vectorised_path() -> None:
    """The serving path (Python floats, one record) and the training/monitoring path (numpy
    columns) give the same bits: derived columns, forces, set-aside findings, NaNs."""
    rng = np.random.default_rng(16)
    for _ in range(500):
        record = _random_record(rng)
        _, rows = rows_from_record(record)
        expected = _record_as_columns(record)
        assert rows.dtype == expected.dtype and rows.shape == expected.shape
        assert rows.tobytes() == expected.tobytes(), record
