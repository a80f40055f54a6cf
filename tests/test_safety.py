"""Safety beats the score: red flags, and values outside the training population flagged."""

from __future__ import annotations

import numpy as np

from cds.features import MODEL_COLUMNS, RED_FLAGS
from cds.safety import population_warnings, red_flags

TORQUE = "hip_abduction_symptomatic_nm_per_kg"


def _row(**values: float) -> np.ndarray:
    row = np.full(len(MODEL_COLUMNS), np.nan)
    for name, value in values.items():
        row[MODEL_COLUMNS.index(name)] = value
    return row


def test_a_value_outside_the_training_range_is_flagged_with_the_range() -> None:
    population = {TORQUE: [0.5, 2.2]}
    warnings = population_warnings(_row(**{TORQUE: 3.1}), population)
    assert [w["feature"] for w in warnings] == [TORQUE]
    assert warnings[0]["code"] == "out-of-population" and "0.5-2.2" in warnings[0]["message"]
    assert population_warnings(_row(**{TORQUE: 0.2}), population)[0]["feature"] == TORQUE


def test_values_inside_the_range_missing_values_and_unbounded_columns_are_not_flagged() -> None:
    population = {TORQUE: [0.5, 2.2]}
    assert population_warnings(_row(**{TORQUE: 0.5}), population) == []
    assert population_warnings(_row(**{TORQUE: 2.2}), population) == []
    assert population_warnings(_row(), population) == []  # nothing recorded
    assert population_warnings(_row(**{TORQUE: 9.0}), {}) == []  # no range known


def test_each_model_gets_its_own_ranges() -> None:
    row = _row(**{TORQUE: 1.5})
    assert population_warnings(row, {TORQUE: [0.5, 2.2]}) == []
    assert len(population_warnings(row, {TORQUE: [0.5, 1.2]})) == 1


def test_red_flags_are_the_questions_answered_yes() -> None:
    flag = RED_FLAGS[0].name
    assert red_flags({flag: True}) == [{"feature": flag, "label": RED_FLAGS[0].label}]
    assert red_flags({flag: False}) == [] and red_flags({}) == []
