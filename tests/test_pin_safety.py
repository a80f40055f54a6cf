"""Pins: every red flag refers, whatever the score; and the out-of-population range is the
0.5th-99.5th percentile of the training data.

Parametrised over the contract's ``RED_FLAGS`` (a flag added to the contract is pinned here
without an edit), with the cauda-equina flags named explicitly so that one of them leaving the
contract, or no longer referring, fails by name. Only ``action`` and the named flag are
asserted: what a referral carries besides (probabilities, factors) is not this file's concern.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from flask import Flask

from cds.assess import assess
from cds.features import MODEL_COLUMNS, RED_FLAGS, column_feature
from cds.model import Model
from cds.safety import population_warnings, red_flags
from tests.conftest import load_example
from tests.service_fixtures import make_app
from training.artefact import population_ranges

__all__ = ["make_app"]

CAUDA_EQUINA = ("rf_saddle_numbness", "rf_progressive_neuro_deficit")
FLAG_NAMES = [f.name for f in RED_FLAGS]


def _record(**answers: bool) -> dict[str, Any]:
    """An ordinary patient (no red flag answered yes) with ``answers`` added."""
    record = {k: v for k, v in load_example("runner_pfp_hip_driven").items()
              if not k.startswith("rf_")}
    return {**record, **answers}


def _flagged(result: dict[str, Any]) -> list[str]:
    return [f["feature"] for f in result["red_flags"]]


def test_the_contract_still_asks_the_cauda_equina_questions() -> None:
    assert set(CAUDA_EQUINA) <= set(FLAG_NAMES)


def test_a_patient_without_red_flags_is_assessed_not_referred(tiny_model: Model) -> None:
    """The baseline the per-flag tests rely on: no flag, no referral."""
    result = assess(_record(**dict.fromkeys(FLAG_NAMES, False)), model=tiny_model).to_dict()
    assert result["action"] == "assess" and result["red_flags"] == []


@pytest.mark.parametrize("flag", FLAG_NAMES)
def test_each_red_flag_alone_refers_and_is_named(tiny_model: Model, flag: str) -> None:
    result = assess(_record(**{flag: True}), model=tiny_model).to_dict()
    assert result["action"] == "refer"
    assert _flagged(result) == [flag]


@pytest.mark.parametrize("flag", FLAG_NAMES)
def test_each_red_flag_answered_no_does_not_refer(tiny_model: Model, flag: str) -> None:
    result = assess(_record(**{flag: False}), model=tiny_model).to_dict()
    assert result["action"] == "assess" and _flagged(result) == []


@pytest.mark.parametrize("flag", FLAG_NAMES)
def test_each_red_flag_refers_among_the_others_answered_no(tiny_model: Model, flag: str) -> None:
    answers = {**dict.fromkeys(FLAG_NAMES, False), flag: True}
    result = assess(_record(**answers), model=tiny_model).to_dict()
    assert result["action"] == "refer" and _flagged(result) == [flag]


def test_saddle_numbness_refers(tiny_model: Model) -> None:
    result = assess(_record(rf_saddle_numbness=True), model=tiny_model).to_dict()
    assert result["action"] == "refer" and "rf_saddle_numbness" in _flagged(result)


def test_progressive_neurological_deficit_refers(tiny_model: Model) -> None:
    result = assess(_record(rf_progressive_neuro_deficit=True), model=tiny_model).to_dict()
    assert result["action"] == "refer" and "rf_progressive_neuro_deficit" in _flagged(result)


def test_every_flag_answered_yes_is_named_in_contract_order() -> None:
    assert [f["feature"] for f in red_flags(dict.fromkeys(FLAG_NAMES, True))] == FLAG_NAMES


def test_a_red_flag_must_be_answered_yes_not_merely_present() -> None:
    """Only ``True`` refers: a validated record carries booleans, and ``None`` means not asked."""
    assert red_flags(dict.fromkeys(FLAG_NAMES)) == []


@pytest.mark.parametrize("flag", CAUDA_EQUINA)
def test_the_api_refers_a_cauda_equina_flag(make_app: Callable[..., Flask], flag: str) -> None:
    """The same through the JSON API: the stored and returned assessment says refer."""
    response = make_app().test_client().post("/v1/assessments", json=_record(**{flag: True}))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["action"] == "refer" and flag in _flagged(body)


# ------------------------------------------------------------------ out-of-population range

NUMERIC = next(j for j, c in enumerate(MODEL_COLUMNS)
               if column_feature(c).kind in ("number", "integer"))


def _training(values: np.ndarray) -> np.ndarray:
    X = np.full((len(values), len(MODEL_COLUMNS)), np.nan)
    X[:, NUMERIC] = values
    return X


def test_the_population_range_is_the_training_support() -> None:
    """0.5..1000.5 in steps of 1: the range is the smallest to the largest trained value (issue
    #12: only what lies outside the training support is extrapolation), not a percentile."""
    ranges = population_ranges(_training(np.arange(1001.0) + 0.5))
    assert ranges[MODEL_COLUMNS[NUMERIC]] == [0.5, 1000.5]


def test_the_population_range_rounds_outward_so_trained_extremes_stay_inside() -> None:
    ranges = population_ranges(_training(np.array([0.123456, 0.5, 2.345678])))
    assert ranges[MODEL_COLUMNS[NUMERIC]] == [0.1234, 2.3457]


def test_the_population_range_ignores_missing_values() -> None:
    values = np.concatenate([np.arange(1001.0), np.full(500, np.nan)])
    assert population_ranges(_training(values))[MODEL_COLUMNS[NUMERIC]] == [0.0, 1000.0]


def test_only_numeric_columns_with_values_get_a_range() -> None:
    ranges = population_ranges(_training(np.arange(1001.0)))
    assert list(ranges) == [MODEL_COLUMNS[NUMERIC]]  # the others are all missing or categories


def test_values_beyond_the_training_support_are_flagged_inside_are_not() -> None:
    """End to end: a range learned from training data, then rows just inside and just outside."""
    population = population_ranges(_training(np.arange(1001.0)))
    column = MODEL_COLUMNS[NUMERIC]

    def flagged(value: float) -> bool:
        row = np.full(len(MODEL_COLUMNS), np.nan)
        row[NUMERIC] = value
        return [w["feature"] for w in population_warnings(row, population)] == [column]

    assert not flagged(0.0) and not flagged(1000.0) and not flagged(2.0) and not flagged(998.0)
    assert flagged(-0.1) and flagged(1000.1) and flagged(-50.0) and flagged(2000.0)


def test_the_shipped_model_records_a_range_for_every_numeric_input(shipped_model: Model) -> None:
    population = shipped_model.metadata["population"]
    numeric = [c for c in MODEL_COLUMNS if column_feature(c).kind in ("number", "integer")]
    assert set(population) <= set(numeric) and population
    assert all(lo <= hi for lo, hi in population.values())


# ------------------------------------------------------------------ the warnings' words

TORQUE = "knee_extension_nm_per_kg"  # a model column in N·m/kg


def _row(column: str, value: float) -> np.ndarray:
    row = np.full(len(MODEL_COLUMNS), np.nan)
    row[MODEL_COLUMNS.index(column)] = value
    return row


def test_the_out_of_population_warning_says_the_range_in_the_unit() -> None:
    [warning] = population_warnings(_row(TORQUE, 3.1), {TORQUE: [0.5, 2.2]}, "min-max")
    assert warning["message"] == (
        "Isometric knee extension (quadriceps) torque, painful side lies outside the population "
        "the model was trained on (0.5-2.2 N·m/kg, smallest to largest value in training); the "
        "estimate is extrapolated and less reliable.")


def test_a_model_without_a_population_method_says_its_range_is_a_percentile_range() -> None:
    """0.1.0-era metadata (no ``population_method``) stored the central 99 %; the words say so."""
    [warning] = population_warnings(_row(TORQUE, 3.1), {TORQUE: [0.5, 2.2]})
    assert "(0.5-2.2 N·m/kg, 0.5th-99.5th percentile of training)" in warning["message"]


def test_an_out_of_population_warning_for_a_value_without_a_unit_shows_the_bare_range(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import cds.safety

    unitless = dataclasses.replace(column_feature(TORQUE), unit="")
    monkeypatch.setattr(cds.safety, "column_feature", lambda _: unitless)
    [warning] = population_warnings(_row(TORQUE, 3.1), {TORQUE: [0.5, 2.2]})
    assert "trained on (0.5-2.2, 0.5th-99.5th percentile of training); the estimate" in \
        warning["message"]


def test_the_not_applicable_warning_says_what_was_set_aside_and_why() -> None:
    from cds.safety import not_applicable

    [warning] = not_applicable({"running_pelvic_drop_deg": 14.0, "activity_profile": "general",
                                "complaints": ["pfp"]})
    assert warning == {
        "feature": "running_pelvic_drop_deg", "code": "not-applicable",
        "message": "Running: contralateral pelvic drop (runners) was recorded, but it applies "
                   "to runners only; the model set it aside for every complaint (it learned "
                   "this finding only where it applies)."}


def test_the_ranges_are_computed_once_per_model() -> None:
    """The docstring's promise: the same population mapping gives the same arrays back."""
    from cds.safety import _bounds

    population = {TORQUE: [0.5, 2.2]}
    assert _bounds(population)[0] is _bounds(population)[0]


def test_a_reused_object_id_never_serves_another_models_ranges() -> None:
    """The cache is keyed by ``id()``; ids are reused after a model is freed, so an entry whose
    mapping is not this very object is recomputed, not served."""
    from cds.safety import _BOUNDS

    population = {TORQUE: [0.5, 2.2]}
    stale = np.full(len(MODEL_COLUMNS), 10.0)
    _BOUNDS[id(population)] = ({TORQUE: [10.0, 10.0]}, stale, stale)
    try:
        assert population_warnings(_row(TORQUE, 1.5), population) == []
    finally:
        _BOUNDS.pop(id(population), None)
