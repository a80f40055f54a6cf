"""Bad input gets every broken rule at once, each naming the field and the rule."""

from __future__ import annotations

import math

import pytest

from cds.errors import InvalidRecord
from cds.validate import validate_record


def _errors(record: object) -> dict[str, str]:
    with pytest.raises(InvalidRecord) as info:
        validate_record(record)
    return {e.field: e.rule for e in info.value.errors}


def test_all_broken_rules_are_reported_at_once() -> None:
    errors = _errors({"complaints": ["pfp"], "age_years": 11, "sex": "x", "pain_nrs": 12,
                      "knee_effusion": "yes", "bmi_kg_m2": math.nan})
    assert errors == {"age_years": "minimum", "sex": "enum", "pain_nrs": "maximum",
                      "knee_effusion": "type", "bmi_kg_m2": "type"}


def test_missing_required_fields_are_named() -> None:
    assert _errors({}) == {"complaints": "required", "age_years": "required", "sex": "required"}


def test_unknown_fields_are_refused_not_ignored() -> None:
    assert _errors({"complaints": ["lbp"], "age_years": 40, "sex": "male", "name": "x"}) == {
        "name": "additionalProperties"}


def test_a_boolean_is_not_a_number() -> None:
    assert _errors({"complaints": ["lbp"], "age_years": True, "sex": "male"}) == {
        "age_years": "type"}


def test_messages_never_echo_the_value() -> None:
    with pytest.raises(InvalidRecord) as info:
        validate_record({"complaints": ["lbp"], "age_years": 40, "sex": "SECRET-VALUE"})
    assert "SECRET-VALUE" not in str(info.value)
    assert all("SECRET-VALUE" not in e.message for e in info.value.errors)


def test_not_an_object_is_refused() -> None:
    assert _errors(["pfp"]) == {"$": "type"}


def test_nulls_mean_not_recorded() -> None:
    clean = validate_record({"complaints": ["itbs"], "age_years": 40, "sex": "male",
                             "pain_nrs": None, "patient_id": "p1"})
    assert clean == {"complaints": ["itbs"], "age_years": 40, "sex": "male", "patient_id": "p1"}
