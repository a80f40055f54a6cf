"""Issue 14: one bad value never loses the card. Convertible units are converted (UCUM); an
Observation that cannot be used is set aside, with a note on the card and in the RiskAssessment."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from cds.errors import InvalidRecord
from cds.fhir import record_from_fhir
from service.store import assessments, get_store
from tests.service_fixtures import hook_call, observation, quantity, runner_prefetch

URL = "/cds-services/gmed-driver"


def _with_left_torque(**value: Any) -> dict[str, Any]:
    prefetch = runner_prefetch()
    entries = prefetch["observations"]["entry"]
    entries[2]["resource"] = observation("hip_abduction_left_nm_per_kg", id="torque-l", **value)
    return prefetch


@pytest.mark.parametrize("unit", ["kgf", "N", "furlong"])
def test_torque_in_a_force_or_unknown_unit_is_set_aside_and_the_card_kept(
        app: Flask, unit: str) -> None:
    client = app.test_client()
    response = client.post(URL, json=hook_call(prefetch=_with_left_torque(
        **quantity(15.0, unit))))
    assert response.status_code == 200
    [card] = response.get_json()["cards"]
    assert "Observation/torque-l set aside" in card["detail"]
    with app.app_context():
        [row] = get_store().rows(assessments)
    assert "hip_abduction_left_nm_per_kg" not in row["inputs"]
    assert "hip_abduction_right_nm_per_kg" in row["inputs"]  # the rest was kept
    fhir = client.get(f"/fhir/RiskAssessment/{row['id']}").get_json()
    assert any("torque-l set aside" in n["text"] for n in fhir["note"])


def test_torque_in_foot_pounds_per_kg_is_converted(app: Flask) -> None:
    response = app.test_client().post(URL, json=hook_call(prefetch=_with_left_torque(
        **quantity(1.0, "[lbf_av].[ft_i]/kg"))))
    assert response.status_code == 200
    with app.app_context():
        [row] = get_store().rows(assessments)
    assert row["inputs"]["hip_abduction_left_nm_per_kg"] == pytest.approx(1.355818, abs=1e-5)
    assert row["result"]["warnings"] == [] or all(
        w["code"] != "resource-set-aside" for w in row["result"]["warnings"])


def test_converted_value_outside_the_contract_range_is_set_aside(app: Flask) -> None:
    response = app.test_client().post(URL, json=hook_call(prefetch=_with_left_torque(
        **quantity(90.0, "N.m/kg"))))
    assert response.status_code == 200
    assert "outside the contract's range" in response.get_json()["cards"][0]["detail"]


def test_strict_reading_still_names_the_field_and_rule() -> None:
    obs = observation("hip_abduction_left_nm_per_kg", **quantity(15.0, "kgf"))
    with pytest.raises(InvalidRecord) as excinfo:
        record_from_fhir([obs])
    assert [(e.field, e.rule) for e in excinfo.value.errors] == [
        ("hip_abduction_left_nm_per_kg", "unit")]
    lenient = record_from_fhir([obs], lenient=True)
    assert "hip_abduction_left_nm_per_kg" not in lenient.record
    assert [(e.field, e.rule) for e in lenient.set_aside] == [("hip_abduction_left_nm_per_kg", "unit")]


def test_another_patients_data_still_fails_the_call(app: Flask) -> None:
    prefetch = runner_prefetch()
    prefetch["observations"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/p2"}
    assert app.test_client().post(URL, json=hook_call(prefetch=prefetch)).status_code == 422
