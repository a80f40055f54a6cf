"""EHR integration (issue 14): what an EHR reads back as FHIR, and what every emitted resource
names resolves on the service."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import load_example
from tests.service_fixtures import BASE, ISSUER, Signer

FHIR = "application/fhir+json"


@pytest.fixture
def record() -> dict[str, Any]:
    return load_example("runner_pfp_hip_driven")


def test_location_of_a_fhir_create_resolves_as_a_risk_assessment(
        client: FlaskClient, record: dict[str, Any]) -> None:
    created = client.post("/v1/assessments", json=record, headers={"Accept": FHIR})
    location = created.headers["Location"]
    read = client.get(location, headers={"Accept": FHIR})
    assert read.status_code == 200 and read.mimetype == FHIR
    body = read.get_json()
    assert body["resourceType"] == "RiskAssessment" and body["id"] == created.get_json()["id"]
    assert body["prediction"][0]["probabilityDecimal"] == \
        created.get_json()["prediction"][0]["probabilityDecimal"]
    assert client.get(location).get_json()["id"] == body["id"]  # plain JSON without FHIR asked


def test_fhir_risk_assessment_route_reads_a_stored_assessment(
        client: FlaskClient, record: dict[str, Any]) -> None:
    aid = client.post("/v1/assessments", json=record).get_json()["id"]
    response = client.get(f"/fhir/RiskAssessment/{aid}")
    assert response.status_code == 200 and response.get_json()["id"] == aid
    missing = client.get("/fhir/RiskAssessment/nope")
    assert missing.status_code == 404
    assert missing.get_json()["resourceType"] == "OperationOutcome"


def test_metadata_is_an_r4_capability_statement_of_what_is_served(client: FlaskClient) -> None:
    cs = client.get("/fhir/metadata").get_json()
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    assert cs["kind"] == "instance" and cs["format"] == ["json"]
    rest = cs["rest"][0]
    assert "JWT" in rest["security"]["description"]
    served = {r["type"]: [i["code"] for i in r["interaction"]] for r in rest["resource"]}
    assert served["RiskAssessment"] == ["read"]
    assert "search-type" in served["Questionnaire"]


def test_questionnaire_search_by_url_is_a_searchset(client: FlaskClient) -> None:
    url = "https://gmed-cds.org/fhir/Questionnaire/gmed-intake"
    hit = client.get(f"/fhir/Questionnaire?url={url}").get_json()
    assert hit["resourceType"] == "Bundle" and hit["type"] == "searchset"
    assert hit["total"] == 1 and hit["entry"][0]["resource"]["url"] == url
    miss = client.get("/fhir/Questionnaire?url=https://example.org/Questionnaire/x").get_json()
    assert miss["total"] == 0 and miss["entry"] == []


def test_risk_assessment_of_a_plain_record_keeps_the_callers_patient_id(
        client: FlaskClient, record: dict[str, Any]) -> None:
    body = client.post("/v1/assessments", json=record, headers={"Accept": FHIR}).get_json()
    assert body["subject"] == {"identifier": {"value": record["patient_id"]}}


def test_stored_risk_assessment_names_the_subject_by_pseudonym_only(
        app: Flask, record: dict[str, Any]) -> None:
    from service.store import get_store
    aid = app.test_client().post("/v1/assessments", json=record).get_json()["id"]
    body = app.test_client().get(f"/fhir/RiskAssessment/{aid}").get_json()
    with app.app_context():
        assert body["subject"]["identifier"]["value"] == get_store().pseudonym(record["patient_id"])
    assert record["patient_id"] not in str(body)


def test_risk_probability_codings_use_the_code_systems_displays(
        client: FlaskClient, record: dict[str, Any]) -> None:
    body = client.post("/v1/assessments", json=record, headers={"Accept": FHIR}).get_json()
    displays = {p["qualitativeRisk"]["coding"][0]["code"]: p["qualitativeRisk"]["coding"][0]["display"]
                for p in body["prediction"]}
    official = {"low": "Low likelihood", "moderate": "Moderate likelihood",
                "high": "High likelihood"}
    assert displays and all(official[c] == d for c, d in displays.items())


def test_risk_assessment_is_labelled_ai_asserted_and_names_the_model_card(
        client: FlaskClient, record: dict[str, Any]) -> None:
    body = client.post("/v1/assessments", json=record, headers={"Accept": FHIR}).get_json()
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "AIAST", "display": "Artificial Intelligence asserted"} in body["meta"]["security"]
    device = next(c for c in body["contained"] if c["resourceType"] == "Device")
    assert body["performer"]["reference"] == f"#{device['id']}"
    assert device["url"].endswith("/v1/model/card")
    assert client.get(device["url"].removeprefix("http://localhost")).status_code == 200


def test_another_issuer_gets_404_for_a_risk_assessment(
        make_app: Callable[..., Flask], signer: Signer, tmp_path: Path,
        record: dict[str, Any]) -> None:
    other = Signer()
    files = {}
    for name, keys in (("a", signer), ("b", other)):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(keys.jwks()))
    other_iss = "https://other-ehr.example.org"
    app = make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jwks_file": str(files["a"])},
                                            other_iss: {"jwks_file": str(files["b"])}})

    def as_(keys: Signer, iss: str, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {keys.token(BASE + path, iss=iss)}", **kw}
        return app.test_client().open(path, method=method, headers=headers,
                                      json=record if method == "POST" else None)

    aid = as_(signer, ISSUER, "POST", "/v1/assessments").get_json()["id"]
    assert as_(signer, ISSUER, "GET", f"/fhir/RiskAssessment/{aid}").status_code == 200
    assert as_(other, other_iss, "GET", f"/fhir/RiskAssessment/{aid}").status_code == 404
    assert as_(other, other_iss, "GET", f"/v1/assessments/{aid}",
               Accept=FHIR).status_code == 404
    assert app.test_client().get(f"/fhir/RiskAssessment/{aid}").status_code == 401
