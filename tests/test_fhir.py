"""FHIR R4 in (Patient, Observation, Condition, QuestionnaireResponse) and out (RiskAssessment,
Questionnaire, CodeSystem)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds.assessment import Assessment, ComplaintResult, Factor
from cds.errors import InvalidRecord
from cds.features import BY_NAME, COMPLAINT_SYSTEM, ICD10CM, LOCAL_SYSTEM, record_fields
from cds.fhir import (
    QUESTIONNAIRE_URL,
    UCUM,
    findings_code_system,
    flatten,
    intake_questionnaire,
    record_from_fhir,
)
from cds.render.risk_assessment import risk_assessment
from cds.validate import validate_record

TODAY = date(2026, 3, 1)


def patient(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "gender": "female",
            "birthDate": "1990-05-02", **extra}


def observation(feature: str, **value: Any) -> dict[str, Any]:
    coding = BY_NAME[feature].coding
    return {"resourceType": "Observation", "status": "final",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": coding.system, "code": coding.code}]}, **value}


def quantity(value: float, code: str, system: str = UCUM) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "system": system, "code": code}}


def condition(system: str, code: str, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"code": status}]},
            "code": {"coding": [{"system": system, "code": code}]}}


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


def read(*resources: dict[str, Any]) -> dict[str, Any]:
    return record_from_fhir(bundle(*resources), today=TODAY).record


def rule_of(excinfo: pytest.ExceptionInfo[InvalidRecord]) -> list[tuple[str, str]]:
    return [(e.field, e.rule) for e in excinfo.value.errors]


def test_patient_gives_sex_and_age_in_completed_years() -> None:
    record = read(patient())
    assert record["sex"] == "female"
    assert record["age_years"] == 35  # born May 1990, seen March 2026
    assert record["patient_id"] == "p1"


def test_partial_birth_date_reads_the_middle_of_the_year() -> None:
    assert read(patient(birthDate="1990"))["age_years"] == 35


def test_unknown_gender_gives_no_sex_rather_than_a_guess() -> None:
    assert "sex" not in read(patient(gender="unknown"))


def test_quantity_in_the_contract_unit_is_read() -> None:
    assert read(patient(), observation("bmi_kg_m2", **quantity(23.4, "kg/m2")))["bmi_kg_m2"] == 23.4


def test_radians_convert_to_degrees() -> None:
    record = read(patient(), observation("running_pelvic_drop_deg", **quantity(0.1, "rad")))
    assert record["running_pelvic_drop_deg"] == pytest.approx(5.7296, abs=1e-3)


def test_weeks_convert_to_months() -> None:
    record = read(patient(), observation("symptom_duration_months", **quantity(13, "wk")))
    assert record["symptom_duration_months"] == pytest.approx(13 * 7 / 30.4375, abs=1e-4)


@pytest.mark.parametrize("feature,given", [("bmi_kg_m2", "lb/in2"),
                                           ("running_pelvic_drop_deg", "%"),
                                           ("hip_abduction_left_nm_per_kg", "N.m")])
def test_unconvertible_unit_is_rejected_naming_the_feature(feature: str, given: str) -> None:
    with pytest.raises(InvalidRecord) as excinfo:
        read(patient(), observation(feature, **quantity(1.0, given)))
    assert rule_of(excinfo) == [(feature, "unit")]


def test_non_ucum_unit_system_is_rejected() -> None:
    with pytest.raises(InvalidRecord) as excinfo:
        read(observation("bmi_kg_m2", **quantity(23.0, "kg/m2", system="http://example.org")))
    assert rule_of(excinfo) == [("bmi_kg_m2", "unit")]


def test_bare_number_for_a_measured_quantity_is_rejected() -> None:
    with pytest.raises(InvalidRecord) as excinfo:
        read(observation("single_leg_squat_knee_fppa_deg", valueDecimal=14.0))
    assert rule_of(excinfo) == [("single_leg_squat_knee_fppa_deg", "unit")]


def test_score_may_come_as_value_integer() -> None:
    assert read(observation("pain_nrs", valueInteger=6))["pain_nrs"] == 6


def test_boolean_from_value_boolean_and_from_snomed_yes_no() -> None:
    yes = {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                "code": "373066001"}]}}
    no = {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                               "code": "373067005"}]}}
    record = read(observation("trendelenburg_sign", valueBoolean=True),
                  observation("knee_effusion", **no), observation("lateral_hip_pain", **yes))
    assert record["trendelenburg_sign"] is True
    assert record["knee_effusion"] is False
    assert record["lateral_hip_pain"] is True


def test_unrecognised_boolean_answer_is_rejected() -> None:
    with pytest.raises(InvalidRecord) as excinfo:
        read(observation("knee_effusion", valueString="maybe"))
    assert rule_of(excinfo) == [("knee_effusion", "type")]


def test_latest_observation_of_a_finding_wins() -> None:
    old = observation("pain_nrs", valueInteger=8, effectiveDateTime="2025-01-01")
    new = observation("pain_nrs", valueInteger=3, effectiveDateTime="2026-02-01")
    assert read(new, old)["pain_nrs"] == 3


def test_entered_in_error_observation_is_ignored() -> None:
    assert "pain_nrs" not in read(observation("pain_nrs", valueInteger=8,
                                              status="entered-in-error"))


def test_condition_codes_map_to_complaints_in_contract_order() -> None:
    record = read(patient(), condition("http://snomed.info/sct", "279039007"),
                  condition(ICD10CM, "M22.2X1"))
    assert record["complaints"] == ["pfp", "lbp"]


def test_resolved_condition_is_not_a_presenting_complaint() -> None:
    assert "complaints" not in read(patient(), condition(ICD10CM, "M76.31", status="resolved"))


def test_uncovered_condition_gives_no_complaint() -> None:
    assert "complaints" not in read(patient(), condition(ICD10CM, "S83.5"))


def test_another_patients_observation_is_rejected() -> None:
    other = observation("pain_nrs", valueInteger=4, subject={"reference": "Patient/p2"})
    with pytest.raises(InvalidRecord) as excinfo:
        read(patient(), other)
    assert rule_of(excinfo) == [("subject", "subject")]


def questionnaire_response(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "questionnaire": QUESTIONNAIRE_URL,
            "status": "completed", "authored": "2026-02-28",
            "item": [{"linkId": "intake", "item": list(items)}], **extra}


def test_questionnaire_response_answers_fill_the_record() -> None:
    qr = questionnaire_response(
        {"linkId": "complaints", "answer": [{"valueCoding": {"code": "pfp"}},
                                            {"valueCoding": {"code": "itbs"}}]},
        {"linkId": "activity_profile", "answer": [{"valueCoding": {"code": "runner"}}]},
        {"linkId": "pain_nrs", "answer": [{"valueInteger": 5}]},
        {"linkId": "lateral_hip_pain", "answer": [{"valueBoolean": True}]},
        {"linkId": "bmi_kg_m2", "answer": [{"valueQuantity": {"value": 24.0, "system": UCUM,
                                                              "code": "kg/m2"}}]})
    record = read(patient(), qr)
    assert record["complaints"] == ["pfp", "itbs"]
    assert (record["activity_profile"], record["pain_nrs"], record["lateral_hip_pain"],
            record["bmi_kg_m2"]) == ("runner", 5, True, 24.0)
    validate_record(record)


def test_questionnaire_response_of_another_questionnaire_is_rejected() -> None:
    qr = questionnaire_response(questionnaire="http://example.org/Questionnaire/phq9")
    with pytest.raises(InvalidRecord) as excinfo:
        read(qr)
    assert rule_of(excinfo) == [("questionnaire", "questionnaire")]


def test_unknown_link_id_is_rejected() -> None:
    qr = questionnaire_response({"linkId": "shoe_size", "answer": [{"valueInteger": 9}]})
    with pytest.raises(InvalidRecord) as excinfo:
        read(qr)
    assert rule_of(excinfo) == [("shoe_size", "additionalProperties")]


def test_errors_never_echo_the_value() -> None:
    with pytest.raises(InvalidRecord) as excinfo:
        read(observation("bmi_kg_m2", **quantity(987.654, "lb/in2")))
    assert "987" not in str(excinfo.value.errors)


def test_list_of_resources_and_single_resource_are_accepted() -> None:
    assert record_from_fhir([patient()], today=TODAY).record["sex"] == "female"
    assert record_from_fhir(patient(), today=TODAY).record["sex"] == "female"


def test_basis_lists_the_resources_used() -> None:
    obs = {**observation("pain_nrs", valueInteger=4), "id": "o1"}
    assert record_from_fhir(bundle(patient(), obs), today=TODAY).basis == ["Observation/o1"]


def _assessment(action: str = "assess") -> Assessment:
    factor = Factor("trendelenburg_sign", "Trendelenburg sign positive", "yes", None, None, 0.4,
                    "raises", "Trendelenburg sign positive: yes raises the estimate")
    result = ComplaintResult("pfp", "Patellofemoral (anterior knee) pain", 0.62, "high", 0.5,
                             -1.2, -0.9, 0.29, [factor], None, [], None)
    flags = [{"feature": "rf_fever", "label": "Fever"}] if action == "refer" else []
    return Assessment(model={"id": "gmed-driver", "version": "1.0.0",
                             "trained_on": "simulated cohort"},
                      action=action, red_flags=flags, warnings=[],
                      results=[result] if action == "assess" else [],
                      referral="Refer / rule out serious pathology first: Fever."
                      if action == "refer" else None)


def test_risk_assessment_has_one_prediction_per_complaint_with_band() -> None:
    ra = risk_assessment(_assessment(), subject="Patient/p1", basis=["Observation/o1"])
    assert ra["resourceType"] == "RiskAssessment" and ra["status"] == "final"
    assert ra["subject"] == {"reference": "Patient/p1"}
    [prediction] = ra["prediction"]
    assert prediction["probabilityDecimal"] == 0.62
    assert prediction["qualitativeRisk"]["coding"][0]["code"] == "high"
    assert prediction["outcome"]["coding"][0] == {
        "system": COMPLAINT_SYSTEM, "code": "pfp",
        "display": "Patellofemoral (anterior knee) pain"}
    assert ra["basis"] == [{"reference": "Observation/o1"}]
    assert any("SIMULATED" in n["text"] for n in ra["note"])


def test_risk_assessment_with_red_flag_codes_the_referral_and_gives_no_probability() -> None:
    ra = risk_assessment(_assessment("refer"))
    [prediction] = ra["prediction"]
    assert {"system": "http://snomed.info/sct", "code": "3457005",
            "display": "Patient referral"} in prediction["outcome"]["coding"]
    assert any(c["system"] == LOCAL_SYSTEM and c["code"] == "refer_red_flag"
               for c in prediction["outcome"]["coding"])
    assert "Fever" in prediction["rationale"]
    assert "probabilityDecimal" not in prediction and "qualitativeRisk" not in prediction
    assert ra["note"][0]["text"].startswith("RED FLAG")


def test_the_local_referral_code_is_in_the_published_code_system() -> None:
    codes = {c["code"] for c in findings_code_system()["concept"]}
    assert "refer_red_flag" in codes


def _questions(q: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["linkId"]: i for g in q["item"] for i in g["item"]}


def test_questionnaire_has_one_question_per_record_field() -> None:
    q = intake_questionnaire()
    assert q["url"] == QUESTIONNAIRE_URL and q["id"] == "gmed-intake"
    assert set(_questions(q)) == {f.name for f in record_fields()}


def test_questionnaire_items_carry_types_units_bounds_and_conditions() -> None:
    items = _questions(intake_questionnaire())
    assert items["complaints"]["repeats"] is True and items["complaints"]["required"] is True
    assert [o["valueCoding"]["code"] for o in items["sex"]["answerOption"]] == ["female", "male"]
    assert items["trendelenburg_sign"]["type"] == "boolean"
    bmi = {e["url"].rsplit("/", 1)[1]: e for e in items["bmi_kg_m2"]["extension"]}
    assert bmi["questionnaire-unit"]["valueCoding"]["code"] == "kg/m2"
    assert bmi["minValue"]["valueDecimal"] == 14.0
    assert items["running_pelvic_drop_deg"]["enableWhen"][0]["question"] == "activity_profile"


def test_questionnaire_asks_each_finding_only_for_the_complaints_it_applies_to() -> None:
    items = _questions(intake_questionnaire())
    ober = items["ober_test_positive"]
    assert [(c["question"], c["answerCoding"]["code"]) for c in ober["enableWhen"]] == [
        ("complaints", "itbs")]
    effusion = items["knee_effusion"]
    assert {c["answerCoding"]["code"] for c in effusion["enableWhen"]} == {"pfp", "itbs"}
    assert effusion["enableBehavior"] == "any"
    load = items["training_load_change_recent"]
    assert {c["answerCoding"]["code"] for c in load["enableWhen"]} == {"runner", "cyclist"}
    assert "enableWhen" not in items["rf_saddle_numbness"]  # red flags are always asked
    assert "enableWhen" not in items["trendelenburg_sign"]


def test_questionnaire_response_built_from_the_questionnaire_reads_back() -> None:
    options = _questions(intake_questionnaire())["side"]["answerOption"]
    qr = questionnaire_response({"linkId": "side", "answer": [options[1]]})
    assert read(qr)["side"] == "right"


def test_code_system_lists_every_local_code() -> None:
    codes = {c["code"] for c in findings_code_system()["concept"]}
    assert {f.name for f in record_fields() if f.coding.system == LOCAL_SYSTEM} <= codes


def test_bare_number_in_a_questionnaire_answer_is_in_the_declared_unit() -> None:
    qr = questionnaire_response({"linkId": "age_years", "answer": [{"valueInteger": 44}]},
                                {"linkId": "bmi_kg_m2", "answer": [{"valueDecimal": 24.5}]})
    record = read(qr)
    assert (record["age_years"], record["bmi_kg_m2"]) == (44, 24.5)


def test_flatten_keeps_document_order_through_lists_and_nested_bundles() -> None:
    inner = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Condition"}}]}
    outcome = {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}}
    bundle = {"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "Patient"}}, outcome, {"resource": None}, "junk",
        {"resource": [{"resourceType": "Observation"}, inner, 0]}]}
    flat = flatten([bundle, [[{"resourceType": "QuestionnaireResponse"}]], None])
    assert [r["resourceType"] for r in flat] == [
        "Patient", "Observation", "Condition", "QuestionnaireResponse"]


def test_flatten_is_linear_in_the_items_of_a_wide_body() -> None:
    """A million and a half items in one array and one Bundle (a 1 MiB body holds 500k): linear work
    takes about a second; the old code, which popped the front of a list, takes ~5 minutes.
    Run in a subprocess killed at 60 s: the test fails by timeout, and asserts no time when
    it passes."""
    code = ("from cds.fhir import flatten\n"
            "wide = [0] * 1_500_000\n"
            "bundle = {'resourceType': 'Bundle', 'entry': [{'resource': 0}] * 1_500_000}\n"
            "assert flatten([wide, bundle, {'resourceType': 'Patient'}]) == "
            "[{'resourceType': 'Patient'}]\n")
    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=root, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True)
    except subprocess.TimeoutExpired:
        pytest.fail("flatten of 3 million items did not finish in 60 s: quadratic work")
    assert done.returncode == 0, done.stderr.decode()
