"""Safety beats the score: red flags, values outside the training population flagged, and
findings that do not apply to the patient set aside (and said)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from cds.assess import assess
from cds.features import MODEL_COLUMNS, RED_FLAGS
from cds.intake import rows_from_frame
from cds.model import Model
from cds.safety import population_warnings, red_flags
from tests.conftest import load_example

TORQUE = "hip_abduction_pct_of_norm"


def _row(**values: float) -> np.ndarray:
    row = np.full(len(MODEL_COLUMNS), np.nan)
    for name, value in values.items():
        row[MODEL_COLUMNS.index(name)] = value
    return row


def test_a_value_outside_the_training_range_is_flagged_with_the_range() -> None:
    population = {TORQUE: [50.0, 220.0]}
    warnings = population_warnings(_row(**{TORQUE: 310.0}), population)
    assert [w["feature"] for w in warnings] == [TORQUE]
    assert warnings[0]["code"] == "out-of-population" and "50-220" in warnings[0]["message"]
    assert population_warnings(_row(**{TORQUE: 20.0}), population)[0]["feature"] == TORQUE


def test_values_inside_the_range_missing_values_and_unbounded_columns_are_not_flagged() -> None:
    population = {TORQUE: [50.0, 220.0]}
    assert population_warnings(_row(**{TORQUE: 50.0}), population) == []
    assert population_warnings(_row(**{TORQUE: 220.0}), population) == []
    assert population_warnings(_row(), population) == []  # nothing recorded
    assert population_warnings(_row(**{TORQUE: 900.0}), {}) == []  # no range known


def test_each_model_gets_its_own_ranges() -> None:
    row = _row(**{TORQUE: 150.0})
    assert population_warnings(row, {TORQUE: [50.0, 220.0]}) == []
    assert len(population_warnings(row, {TORQUE: [50.0, 120.0]})) == 1


def test_the_message_says_how_the_range_was_measured() -> None:
    row, population = _row(**{TORQUE: 3.1}), {TORQUE: [0.5, 2.2]}
    [support] = population_warnings(row, population, "min-max")
    [legacy] = population_warnings(row, population)  # 0.1.0's metadata has no method
    assert "smallest to largest value in training" in support["message"]
    assert "0.5th-99.5th percentile" in legacy["message"]


def test_the_population_is_the_training_support_so_its_extremes_are_not_flagged() -> None:
    from training.artefact import population_ranges

    rng = np.random.default_rng(0)
    X = np.full((1000, len(MODEL_COLUMNS)), np.nan)
    j = MODEL_COLUMNS.index(TORQUE)
    X[:, j] = rng.uniform(0.3, 3.0, 1000)
    population = population_ranges(X)
    assert population[TORQUE][0] <= X[:, j].min() and population[TORQUE][1] >= X[:, j].max()
    for extreme in (X[:, j].min(), X[:, j].max()):
        assert population_warnings(_row(**{TORQUE: extreme}), population, "min-max") == []


def test_a_classic_hip_driven_patient_with_a_38_pct_deficit_is_inside_the_population(
        tiny_model: Model) -> None:
    """1.52 against 0.94 N·m/kg: a 38% side-to-side deficit, well within what the simulated
    cohort holds; a percentile range (0.1.0: up to 32%) flagged it as extrapolation."""
    record = {**load_example("runner_pfp_hip_driven"), "hip_abduction_left_nm_per_kg": 1.52,
              "hip_abduction_right_nm_per_kg": 0.94}
    result = assess(record, model=tiny_model).to_dict()
    assert tiny_model.metadata["population_method"] == "min-max"
    assert [w for w in result["warnings"] if w["code"] == "out-of-population"] == []


def test_red_flags_are_the_questions_answered_yes() -> None:
    flag = RED_FLAGS[0].name
    assert red_flags({flag: True}) == [{"feature": flag, "label": RED_FLAGS[0].label}]
    assert red_flags({flag: False}) == [] and red_flags({}) == []


RUNNING = "running_pelvic_drop_deg"


def _without(record: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != name}


@pytest.mark.parametrize("profile", ["general", "cyclist", None])
def test_a_running_finding_for_a_non_runner_is_set_aside_and_said(
        shipped_model: Model, profile: str | None) -> None:
    """Training never sees running analysis for non-runners (nor when the profile is unknown):
    serving sets it aside the same way, so the estimate is the one without it, and says so."""
    record = {**load_example("runner_pfp_hip_driven"), RUNNING: 14.0}
    record = {**_without(record, "activity_profile"),
              **({"activity_profile": profile} if profile else {})}
    with_it = assess(record, model=shipped_model).to_dict()
    without = assess(_without(record, RUNNING), model=shipped_model).to_dict()
    assert with_it["results"][0]["probability"] == without["results"][0]["probability"]
    [warning] = [w for w in with_it["warnings"] if w["feature"] == RUNNING]
    assert warning["code"] == "not-applicable" and "runner" in warning["message"]
    assert not any(w["feature"] == RUNNING for w in without["warnings"])
    assert all(f["feature"] != RUNNING for f in with_it["results"][0]["factors"])
    absent = with_it["results"][0]["not_recorded"]
    assert RUNNING in absent["features"] and "set aside" in absent["text"]


def test_a_running_finding_for_a_runner_counts(shipped_model: Model) -> None:
    record = {**load_example("runner_pfp_hip_driven"), "activity_profile": "runner"}
    low = assess({**record, RUNNING: 3.0}, model=shipped_model).to_dict()
    high = assess({**record, RUNNING: 13.0}, model=shipped_model).to_dict()
    assert low["warnings"] == high["warnings"] == []  # both inside the training population
    assert high["results"][0]["probability"] > low["results"][0]["probability"]


def test_training_rows_set_aside_running_findings_of_non_runners_too() -> None:
    frame = pd.DataFrame({"complaint": ["pfp", "pfp", "pfp"],
                          "activity_profile": ["runner", "general", None],
                          RUNNING: [9.0, 9.0, 9.0]})
    column = rows_from_frame(frame)[:, MODEL_COLUMNS.index(RUNNING)]
    assert column[0] == 9.0 and np.isnan(column[1:]).all()
