"""Issue 14: an unusable QuestionnaireResponse answer (wrong type, a unit that cannot be
converted, out of range, not a question of the form) is set aside with a note on the card and in
the RiskAssessment, like an unusable Observation; the rest of the assessment is kept."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from cds.errors import InvalidRecord
from cds.fhir import QUESTIONNAIRE_URL, UCUM, record_from_fhir
from service.store import assessments, get_store
from tests.service_fixtures import hook_call, runner_prefetch

URL = "/cds-services/gmed-driver"


def _prefetch_with_answer(link: str, answer: dict[str, Any]) -> dict[str, Any]:
    prefetch = runner_prefetch()
    qr = prefetch["intake"]["entry"][0]["resource"]
    qr["id"] = "intake-1"
    qr["item"][0]["item"].append({"linkId": link, "answer": [answer]})
    return prefetch


UNUSABLE = {
    "wrong type (text)": ("symptom_duration_months", {"valueString": "six"}, "type"),
    "wrong type (a string in valueInteger)": ("foot_posture_index", {"valueInteger": "6"},
                                              "integer"),
    "boolean as text": ("lateral_hip_pain", {"valueBoolean": "yes"}, "type"),
    "unknown unit": ("single_leg_squat_trunk_lean_deg", {"valueQuantity": {"value": 5, "system": UCUM,
                                                     "code": "furlong"}}, "unit"),
    "out of range": ("symptom_duration_months", {"valueDecimal": 500}, "maximum"),
    "unknown answer code": ("step_down_quality", {"valueCoding": {"code": "awful"}}, "enum"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_an_unusable_answer_is_set_aside_and_the_card_kept(app: Flask, case: str) -> None:
    link, answer, _ = UNUSABLE[case]
    client = app.test_client()
    response = client.post(URL, json=hook_call(prefetch=_prefetch_with_answer(link, answer)))
    assert response.status_code == 200, response.get_json()
    [card] = response.get_json()["cards"]
    assert f"QuestionnaireResponse/intake-1 item '{link}' set aside" in card["detail"]
    with app.app_context():
        [row] = get_store().rows(assessments)
    assert link not in row["inputs"]
    assert row["inputs"]["side"] == "right"  # the rest of the same response was kept
    assert row["inputs"]["pain_worse_single_leg_loading"] is True
    fhir = client.get(f"/fhir/RiskAssessment/{row['id']}").get_json()
    assert any(f"item '{link}' set aside" in n["text"] for n in fhir["note"])


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_lenient_reading_names_the_field_and_rule_of_the_answer_set_aside(case: str) -> None:
    link, answer, rule = UNUSABLE[case]
    qr = _prefetch_with_answer(link, answer)["intake"]["entry"][0]["resource"]
    read = record_from_fhir(qr, lenient=True)
    assert [(e.field, e.rule) for e in read.set_aside] == [(link, rule)]
    assert link not in read.record and read.record["side"] == "right"


@pytest.mark.parametrize("case", ["wrong type (text)", "unknown unit", "unknown answer code"])
def test_strict_reading_of_an_unusable_answer_still_fails_naming_field_and_rule(
        case: str) -> None:
    link, answer, rule = UNUSABLE[case]
    qr = _prefetch_with_answer(link, answer)["intake"]["entry"][0]["resource"]
    with pytest.raises(InvalidRecord) as err:
        record_from_fhir(qr)
    assert [(e.field, e.rule) for e in err.value.errors] == [(link, rule)]


def test_an_item_that_is_not_a_question_of_the_form_is_set_aside() -> None:
    qr = _prefetch_with_answer("favourite_colour", {"valueString": "blue"})
    read = record_from_fhir(qr["intake"]["entry"][0]["resource"], lenient=True)
    assert [(e.field, e.rule) for e in read.set_aside] == [
        ("favourite_colour", "additionalProperties")]
    assert read.record["activity_profile"] == "runner"


def test_a_response_to_another_questionnaire_is_set_aside_and_the_rest_assessed(
        app: Flask) -> None:
    prefetch = runner_prefetch()
    qr = prefetch["intake"]["entry"][0]["resource"]
    qr["id"] = "other-form"
    qr["questionnaire"] = "https://example.org/Questionnaire/phq-9"
    response = app.test_client().post(URL, json=hook_call(prefetch=prefetch))
    assert response.status_code == 200
    [card] = response.get_json()["cards"]
    assert "QuestionnaireResponse/other-form set aside" in card["detail"]
    assert QUESTIONNAIRE_URL in card["detail"]
