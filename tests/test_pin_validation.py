"""Pins: request validation names the field, the rule and says it in words, for every rule, and
the limits are inclusive.

Each case is a valid record with one thing broken, and the whole list of errors is compared
(field, rule, message), so a rule that stops firing, fires for the wrong field, or loses its
words fails here. Labels and units are read from the contract, not restated.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from cds.errors import FieldError, InvalidRecord
from cds.features import BY_NAME
from cds.validate import _check_scalar, is_text, validate_record
from tests.conftest import load_example

AGE, COMPLAINTS, SEX = BY_NAME["age_years"], BY_NAME["complaints"], BY_NAME["sex"]
WHY_AGE = f" ({AGE.limit_reason})"  # the contract's reason for the age range, said with the rule
TORQUE = BY_NAME["hip_abduction_left_nm_per_kg"]


def _record(**changes: Any) -> dict[str, Any]:
    return {**load_example("runner_pfp_hip_driven"), **changes}


def _errors(record: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(InvalidRecord) as caught:
        validate_record(record)
    return [(e.field, e.rule, e.message) for e in caught.value.errors]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"age_years": 11}, ("age_years", "minimum", f"Age: must be at least 12 years{WHY_AGE}")),
    ({"age_years": 91}, ("age_years", "maximum", f"Age: must be at most 90 years{WHY_AGE}")),
    ({"age_years": 30.5}, ("age_years", "integer", "Age: must be a whole number")),
    ({"age_years": "30"}, ("age_years", "type", "Age: must be a number or null")),
    ({"age_years": True}, ("age_years", "type", "Age: must be a number or null")),
    ({"bmi_kg_m2": float("nan")}, ("bmi_kg_m2", "type", "Body mass index: must be a finite number")),
    ({"bmi_kg_m2": float("inf")}, ("bmi_kg_m2", "type", "Body mass index: must be a finite number")),
    ({"hip_abduction_left_nm_per_kg": 0.1},
     ("hip_abduction_left_nm_per_kg", "minimum", f"{TORQUE.label}: must be at least 0.2 N·m/kg")),
    ({"sex": "other"}, ("sex", "enum", "Sex: must be one of female, male")),
    ({"sex": 1}, ("sex", "enum", "Sex: must be one of female, male")),
    ({"trendelenburg_sign": "yes"},
     ("trendelenburg_sign", "type", "Trendelenburg sign positive: must be true, false or null")),
    ({"complaints": "pfp"}, ("complaints", "type", "Presenting complaint(s): must be a list")),
    ({"complaints": []}, ("complaints", "minItems", "Presenting complaint(s): at least one is required")),
    ({"complaints": ["pfp", "pfp"]},
     ("complaints", "uniqueItems", "Presenting complaint(s): each at most once")),
    ({"complaints": ["pfp", "knee"]},
     ("complaints[1]", "enum", "Presenting complaint(s): must be one of pfp, itbs, lbp")),
    ({"patient_id": 7}, ("patient_id", "type",
                         "patient_id: must be a string (Unicode text) of at most 128 characters")),
    ({"patient_id": "x" * 129}, ("patient_id", "type",
                                 "patient_id: must be a string (Unicode text) of at most 128 characters")),
    ({"patient_id": "a\ud800"}, ("patient_id", "type",
                                 "patient_id: must be a string (Unicode text) of at most 128 characters")),
    ({"shoe_size": 42}, ("shoe_size", "additionalProperties",
                         "Unknown field (not in the feature contract)")),
])
def test_each_broken_rule_is_named_by_field_rule_and_words(
        changes: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert _errors(_record(**changes)) == [expected]


def test_a_record_that_is_not_an_object_is_refused_as_a_whole() -> None:
    assert _errors([1, 2]) == [("$", "type", "A patient record must be a JSON object")]


def test_a_missing_required_field_is_named() -> None:
    record = _record()
    del record["age_years"]
    assert _errors(record) == [("age_years", "required", "Age: required")]


def test_a_required_field_with_a_broken_element_is_not_also_reported_missing() -> None:
    assert [e[:2] for e in _errors(_record(complaints=["knee"]))] == [("complaints[0]", "enum")]


def test_every_broken_rule_is_reported_at_once_in_record_order() -> None:
    record = {"shoe_size": 1, **_record(age_years=10, sex="x")}
    assert [e[:2] for e in _errors(record)] == [
        ("shoe_size", "additionalProperties"), ("age_years", "minimum"), ("sex", "enum")]


def test_an_unknown_field_name_is_cut_to_64_characters() -> None:
    name = "y" * 100
    assert _errors(_record(**{name: 1}))[0][0] == "y" * 64


@pytest.mark.parametrize(("field", "value"), [
    ("age_years", 12), ("age_years", 90), ("hip_abduction_left_nm_per_kg", 0.2),
    ("hip_abduction_left_nm_per_kg", 4.0), ("foot_posture_index", -12), ("pain_nrs", 10),
    ("age_years", 30.0),  # a whole number written as a float
    ("patient_id", "x" * 128),
])
def test_the_limits_themselves_are_allowed(field: str, value: Any) -> None:
    assert validate_record(_record(**{field: value}))[field] == value


def test_nulls_are_dropped_and_a_null_patient_id_is_no_patient_id() -> None:
    clean = validate_record(_record(patient_id=None, bmi_kg_m2=None))
    assert "patient_id" not in clean and "bmi_kg_m2" not in clean
    assert clean["age_years"] == 29


def test_is_text_refuses_non_strings_and_unpaired_surrogates() -> None:
    assert is_text("Zoë") and not is_text(b"x") and not is_text(None) and not is_text("\udc00")


def test_a_number_without_a_unit_is_bounded_without_a_trailing_space() -> None:
    bare = dataclasses.replace(AGE, unit="", limit_reason="")
    assert _check_scalar(bare, 11, "age_years") == FieldError(
        "age_years", "minimum", "Age: must be at least 12")
    assert _check_scalar(bare, 91, "age_years") == FieldError(
        "age_years", "maximum", "Age: must be at most 90")


def test_a_range_with_a_reason_says_it_after_the_rule() -> None:
    assert AGE.limit_reason and _check_scalar(AGE, 11, "age_years") == FieldError(
        "age_years", "minimum", f"Age: must be at least 12 years ({AGE.limit_reason})")
