"""Bad input gets every broken rule at once, each naming the field and the rule."""

from __future__ import annotations

import math

import pytest

from cds.errors import MAX_ERRORS, MAX_ERRORS_PER_FIELD, ErrorList, FieldError, InvalidRecord
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


def test_the_error_bounds_are_the_ones_the_service_tests_rely_on() -> None:
    """tests/test_service_amplification.py bounds its answers with these numbers."""
    assert (MAX_ERRORS_PER_FIELD, 2 * MAX_ERRORS + 1) == (3, 41)


def test_errors_of_one_field_are_cut_and_counted() -> None:
    errors = ErrorList(FieldError(f"feedback[{i}].card", "unknown-card", "No such card")
                       for i in range(1000))
    errors.extend(FieldError(f"x{i}", "additionalProperties", "Unknown") for i in range(5))
    report = errors.report()
    assert errors.total == len(errors) == 1005
    assert [e.field for e in report] == [
        "feedback[0].card", "feedback[1].card", "feedback[2].card",
        "x0", "x1", "x2", "x3", "x4", "feedback"]
    assert report[-1].rule == "maxErrors" and report[-1].message.startswith("feedback: and 997 ")


def test_past_the_total_other_fields_are_counted_on_the_body() -> None:
    errors = ErrorList(FieldError(f"k{i}", "additionalProperties", "Unknown") for i in range(5000))
    report = errors.report()
    assert [e.field for e in report[:MAX_ERRORS]] == [f"k{i}" for i in range(MAX_ERRORS)]
    [cut] = report[MAX_ERRORS:]
    assert (cut.field, cut.rule) == ("$", "maxErrors")
    assert f"and {5000 - MAX_ERRORS} more" in cut.message and "5000 in all" in cut.message


def test_invalid_record_reports_the_bounded_list_and_the_total() -> None:
    with pytest.raises(InvalidRecord) as info:
        validate_record({"complaints": ["pfp"], "age_years": 30, "sex": "female",
                         **{f"k{i}": 0 for i in range(10_000)}})
    assert info.value.total == 10_000 and len(info.value.errors) == MAX_ERRORS + 1
    assert len(str(info.value)) < 2000


def test_more_complaints_than_allowed_values_is_max_items_not_one_error_each() -> None:
    assert _errors({"complaints": [0] * 100_000, "age_years": 30, "sex": "female"}) == {
        "complaints": "maxItems"}
    assert _errors({"complaints": ["pfp", "pfp"], "age_years": 30, "sex": "female"}) == {
        "complaints": "uniqueItems"}
