"""What one assessment prepares once (per feature, per model, per complaint and profile) gives
exactly the answers worked out each time: the single validation pass and the every-rule
validator, the missing items, the set-aside warnings, the probabilities, the population
ranges, the next best test and the JSON-ready dicts. The recorded responses pin the bytes of
whole answers; these pin each prepared path against the plain rule it replaces, over many
records."""

from __future__ import annotations

import collections
import dataclasses
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cds
from cds.assessment import Assessment, ComplaintResult, Factor, NextAssessment, NotRecorded
from cds.contract import PROFILE_FIELD
from cds.errors import InvalidRecord
from cds.explain import _MISSABLE, _recorded, missing_items, next_best
from cds.features import BY_NAME, COMPLAINTS, MODEL_COLUMNS, PROFILES, ROWS, column_feature
from cds.safety import _RESTRICTED, not_applicable, population_warnings
from cds.validate import _validate_every_rule, validate_record
from tests.test_fuzz_contract import SETTINGS, near_misses, valid_records

from .conftest import EXAMPLES, load_example


def _outcome(validate: Any, record: Any) -> Any:
    try:
        return ("clean", validate(record))
    except InvalidRecord as e:
        return ("errors", [(x.field, x.rule, x.message) for x in e.errors])


@SETTINGS
@given(st.one_of(valid_records(), near_misses().map(lambda pair: pair[0])))
def test_one_pass_validation_gives_the_every_rule_answer(record: dict[str, Any]) -> None:
    assert _outcome(validate_record, record) == _outcome(_validate_every_rule, record)


def test_a_value_the_single_pass_does_not_know_is_judged_by_every_rule() -> None:
    class Text(str):
        pass

    record = collections.OrderedDict(complaints=["pfp"], age_years=30.0, sex=Text("female"))
    assert validate_record(record) == {"complaints": ["pfp"], "age_years": 30.0, "sex": "female"}
    assert validate_record({"complaints": ["pfp"], "age_years": 30, "sex": Text("male"),
                            "patient_id": None, "bmi_kg_m2": None}) == {
        "complaints": ["pfp"], "age_years": 30, "sex": "male"}
    with pytest.raises(InvalidRecord) as info:
        validate_record({"complaints": ["pfp"], "age_years": 30, "sex": "male", "x": None})
    assert [(e.field, e.rule) for e in info.value.errors] == [("x", "additionalProperties")]


@pytest.mark.parametrize("profile", [*PROFILES, None])
@pytest.mark.parametrize("complaint", COMPLAINTS)
def test_missing_items_prepared_per_profile_and_complaint_follow_the_contract(
        profile: str | None, complaint: str) -> None:
    rng = np.random.default_rng(len(complaint) + len(str(profile)))
    names = [f.name for f in _MISSABLE] + ["hip_abduction_left_force_n",
                                           "hip_abduction_right_force_kgf"]
    for _ in range(40):
        record: dict[str, Any] = {PROFILE_FIELD: profile, "complaints": [complaint]}
        for name in rng.choice(names, size=int(rng.integers(0, len(names))), replace=False):
            record[str(name)] = rng.choice([None, True, 1.5])  # a null is not recorded
        expected = [{"feature": f.name, "label": f.label, "group": f.group} for f in _MISSABLE
                    if not _recorded(record, f) and f.applies_to(record, complaint)]
        assert missing_items(record, complaint) == expected


def test_probabilities_are_model_probability_bit_for_bit(shipped_model: cds.Model) -> None:
    rng = np.random.default_rng(16)
    for n in (1, 2, 3, 5, 9):
        for _ in range(2000):
            raw = rng.normal(0.0, 4.0, n)
            assert shipped_model.probabilities(raw.tolist()) == shipped_model.probability(
                raw).tolist()
    extremes = [-1000.0, -745.0, -700.5, 0.0, 700.5, 1000.0]
    with np.errstate(over="ignore"):
        assert shipped_model.probabilities(extremes) == shipped_model.probability(
            np.array(extremes)).tolist()


def test_population_ranges_flag_what_comparing_the_arrays_flags(shipped_model: cds.Model) -> None:
    population = shipped_model.metadata["population"]
    low = np.array([population.get(c, (-np.inf, np.inf))[0] for c in MODEL_COLUMNS])
    high = np.array([population.get(c, (-np.inf, np.inf))[1] for c in MODEL_COLUMNS])
    bounded = np.isfinite(low) & np.isfinite(high)
    low0, high0 = np.where(bounded, low, 0.0), np.where(bounded, high, 50.0)
    centre, spread = (low0 + high0) / 2, high0 - low0
    rng = np.random.default_rng(7)
    for _ in range(500):  # about a third recorded outside the range, a third not recorded
        row = np.where(rng.random(len(MODEL_COLUMNS)) < 0.3, np.nan,
                       centre + rng.normal(0.0, 1.0, len(MODEL_COLUMNS)) * spread)
        with np.errstate(invalid="ignore"):
            expected = [MODEL_COLUMNS[j] for j in np.flatnonzero((row < low) | (row > high))]
        assert [w["feature"] for w in population_warnings(row, population, "min-max")] == expected


def _next_best_ranking_every_candidate(model: cds.Model, rows: np.ndarray,
                                       probability: np.ndarray,
                                       procedures: list[list[str]]) -> list[tuple[str, float] | None]:
    """The rule: rank each row's candidates by slope * p * (1 - p) * typical effect."""
    effects = model.metadata["procedure_effects"]
    slope = float(model.calibration["slope"])
    out: list[tuple[str, float] | None] = []
    for i in range(rows.shape[0]):
        complaint = ROWS.allowed[int(rows[i, MODEL_COLUMNS.index("complaint")])]
        p = float(probability[i])
        ranked = sorted(((slope * p * (1 - p) * effects[name]["mean_abs_log_odds"][complaint], name)
                         for name in procedures[i]
                         if complaint in effects.get(name, {}).get("mean_abs_log_odds", {})),
                        reverse=True)
        out.append((ranked[0][1], round(ranked[0][0], 4))
                   if ranked and ranked[0][0] >= 0.02 else None)
    return out


def test_next_best_from_the_prepared_effects_ranks_as_every_candidate_would(
        shipped_model: cds.Model) -> None:
    effects = shipped_model.metadata["procedure_effects"]
    rng = np.random.default_rng(3)
    complaint_column = MODEL_COLUMNS.index("complaint")
    for _ in range(300):
        rows = np.full((3, len(MODEL_COLUMNS)), np.nan)
        rows[:, complaint_column] = rng.integers(0, len(COMPLAINTS), 3)
        probability = rng.random(3)
        procedures = [[str(p) for p in rng.permutation(sorted(effects))[:rng.integers(0, 5)]]
                      for _ in range(3)]
        got = [None if n is None else (n.procedure, n.expected_change)
               for n in next_best(shipped_model, rows, probability.tolist(), procedures)]
        assert got == _next_best_ranking_every_candidate(shipped_model, rows, probability,
                                                         procedures)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.json")))
def test_to_dict_reads_every_field_in_field_order(tiny_model: cds.Model, name: str) -> None:
    assessment = cds.assess(load_example(name), model=tiny_model)
    data = assessment.to_dict()

    def fields_of(obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    assert list(data) == list(fields_of(assessment))
    for result, r in zip(assessment.results, data["results"], strict=True):
        assert list(r) == [f.name for f in dataclasses.fields(ComplaintResult)]
        assert [list(f) for f in r["factors"]] == [
            [x.name for x in dataclasses.fields(Factor)]] * len(result.factors)
        assert r["factors"] == [fields_of(f) for f in result.factors]
        if result.not_recorded is not None:
            assert r["not_recorded"] == fields_of(result.not_recorded)
            assert list(r["not_recorded"]) == [x.name for x in dataclasses.fields(NotRecorded)]
        if result.next_best_assessment is not None:
            assert r["next_best_assessment"] == fields_of(result.next_best_assessment)
            assert list(r["next_best_assessment"]) == [
                x.name for x in dataclasses.fields(NextAssessment)]
    assert Assessment.from_dict(json.loads(json.dumps(data))) == assessment


def test_the_column_wording_shows_values_as_display_value_does() -> None:
    from cds.explain import _WORDING, display_value

    for j, wording in enumerate(_WORDING):
        f = column_feature(MODEL_COLUMNS[j])
        values = [0.0, 1.0, 2.0] if f.kind in ("category", "boolean") else [3.0, 12.345, 0.5]
        for encoded in values[: len(f.allowed) or 3]:
            factor = wording.factor(encoded, 0.25, 0.01, 1)
            assert factor.value == display_value(f, encoded)
            assert factor.text.startswith(f"{f.label}: {factor.value}")


def _set_aside_each_time(record: dict[str, Any]) -> list[str]:
    """The rule: each recorded restricted finding (not a "no") not applying to some complaint."""
    complaints = record.get("complaints") or ()
    return [f.name for f in _RESTRICTED if record.get(f.name) not in (None, False)
            and any(not f.applies_to(record, c) for c in complaints)]


@pytest.mark.parametrize("profile", [*PROFILES, None])
def test_set_aside_warnings_prepared_per_profile_and_complaints_follow_the_contract(
        profile: str | None) -> None:
    rng = np.random.default_rng(len(str(profile)))
    for _ in range(60):
        complaints = [str(c) for c in rng.permutation(COMPLAINTS)[:rng.integers(1, 4)]]
        record: dict[str, Any] = {PROFILE_FIELD: profile, "complaints": complaints}
        for f in _RESTRICTED:
            record[f.name] = rng.choice([None, False, True, 2.5, "absent"])
            if record[f.name] == "absent":
                del record[f.name]
        warnings = not_applicable(record)
        assert [w["feature"] for w in warnings] == _set_aside_each_time(record)
        for w in warnings:
            f = BY_NAME[w["feature"]]
            aside = [c for c in complaints if not f.applies_to(record, c)]
            assert w["code"] == "not-applicable" and f"applies to {f.condition};" in w["message"]
            assert ("every complaint" in w["message"]) == (len(aside) == len(complaints))


def test_the_one_pass_rule_of_an_unbounded_number_never_passes_an_infinity() -> None:
    """A number field without a minimum or maximum (none today) keeps infinities and NaN off the
    one-pass path: they go to the every-rule path, which refuses them as not finite."""
    import dataclasses
    import math

    from cds.features import BY_NAME
    from cds.validate import _rule

    bounded = next(f for f in BY_NAME.values() if f.kind == "number")
    unbounded = dataclasses.replace(bounded, minimum=None, maximum=None)
    _, low, high, _ = _rule(unbounded)
    assert low <= 1e300 <= high
    for value in (math.inf, -math.inf, math.nan):
        assert not low <= value <= high
