"""Record -> model rows: one per complaint, one encoding for serving and training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cds.features import MODEL_COLUMNS
from cds.intake import rows_from_frame, rows_from_record
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
