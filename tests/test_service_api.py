"""The JSON API, the FHIR routes, the error mapping (413, 415, 400, 404, 405) and operations."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds.features import contract_hash, record_fields
from service.store import assessments, audit, get_store, outcomes
from tests.conftest import load_example
from tests.service_fixtures import runner_prefetch, searchset

FHIR = "application/fhir+json"


@pytest.fixture
def record() -> dict[str, Any]:
    return load_example("runner_pfp_hip_driven")


def test_assessment_is_returned_with_its_id_and_stored(app: Flask, record: dict[str, Any]) -> None:
    response = app.test_client().post("/v1/assessments", json=record)
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/v1/assessments/{body['id']}"
    assert body["action"] == "assess" and body["results"][0]["complaint"] == "pfp"
    assert 0 <= body["results"][0]["probability"] <= 1
    with app.app_context():
        [row] = get_store().rows(assessments)
        assert row["id"] == body["id"] and row["patient_ref"] == get_store().pseudonym(
            record["patient_id"])
        assert "patient_id" not in row["inputs"]
        assert get_store().rows(audit)[-1]["assessment_id"] == body["id"]


def test_stored_assessment_reads_back(client: FlaskClient, record: dict[str, Any]) -> None:
    created = client.post("/v1/assessments", json=record).get_json()
    assert client.get(f"/v1/assessments/{created['id']}").get_json() == created
    assert client.get("/v1/assessments/unknown").status_code == 404


def test_fhir_bundle_is_accepted(client: FlaskClient) -> None:
    bundle = searchset(*[r for v in runner_prefetch().values()
                         for r in ([v] if v["resourceType"] != "Bundle"
                                   else [e["resource"] for e in v["entry"]])])
    response = client.post("/v1/assessments", json=bundle, content_type=FHIR)
    assert response.status_code == 201
    assert response.get_json()["results"][0]["complaint"] == "pfp"


def test_questionnaire_response_alone_is_accepted(client: FlaskClient) -> None:
    qr = {"resourceType": "QuestionnaireResponse", "status": "completed",
          "questionnaire": "https://gmed-cds.org/fhir/Questionnaire/gmed-intake",
          "item": [{"linkId": "complaints", "answer": [{"valueCoding": {"code": "lbp"}}]},
                   {"linkId": "age_years", "answer": [{"valueInteger": 44}]},
                   {"linkId": "sex", "answer": [{"valueCoding": {"code": "male"}}]}]}
    response = client.post("/v1/assessments", json=qr)
    assert response.status_code == 201
    assert response.get_json()["results"][0]["complaint"] == "lbp"


def test_risk_assessment_when_asked_for_fhir(client: FlaskClient, record: dict[str, Any]) -> None:
    response = client.post("/v1/assessments", json=record, headers={"Accept": FHIR})
    assert response.status_code == 201 and response.mimetype == FHIR
    body = response.get_json()
    assert body["resourceType"] == "RiskAssessment" and body["id"]
    assert 0 <= body["prediction"][0]["probabilityDecimal"] <= 1


def test_invalid_record_names_every_field_and_rule(client: FlaskClient,
                                                   record: dict[str, Any]) -> None:
    record.update(age_years=11, bmi_kg_m2="heavy", shoe_size=9)
    response = client.post("/v1/assessments", json=record)
    assert response.status_code == 422
    errors = {(e["field"], e["rule"]) for e in response.get_json()["error"]["errors"]}
    assert errors == {("age_years", "minimum"), ("bmi_kg_m2", "type"),
                      ("shoe_size", "additionalProperties")}


def test_invalid_record_gets_an_operation_outcome_when_asked_for_fhir(
        client: FlaskClient, record: dict[str, Any]) -> None:
    record["age_years"] = 11
    response = client.post("/v1/assessments", json=record, headers={"Accept": FHIR})
    assert response.status_code == 422
    assert response.get_json()["issue"][0]["expression"] == ["age_years"]


def test_batch_reports_each_record_alone(client: FlaskClient, record: dict[str, Any]) -> None:
    bad = {**record, "sex": "other"}
    response = client.post("/v1/assessments/batch", json={"records": [record, bad, record]})
    assert response.status_code == 201
    statuses = [r["status"] for r in response.get_json()["results"]]
    assert statuses == [201, 422, 201]
    assert response.get_json()["results"][1]["errors"][0]["field"] == "sex"


def test_batch_over_the_limit_is_rejected(make_app: Callable[..., Flask],
                                          record: dict[str, Any]) -> None:
    client = make_app(BATCH_MAX=2).test_client()
    response = client.post("/v1/assessments/batch", json={"records": [record] * 3})
    assert response.status_code == 422
    assert response.get_json()["error"]["errors"][0]["rule"] == "maxItems"


def test_model_metadata_leaves_out_bulky_tables(client: FlaskClient) -> None:
    body = client.get("/v1/model").get_json()
    assert body["version"] == "0.0.1-test" and "simulated" in body["trained_on"]
    assert "procedure_effects" not in body and body["model_card_url"] == "/v1/model/card"


def test_model_card_is_markdown(client: FlaskClient) -> None:
    response = client.get("/v1/model/card")
    assert response.status_code == 200 and response.mimetype == "text/markdown"
    assert response.get_data(as_text=True).startswith("#")


def test_features_route_serves_the_contract(client: FlaskClient) -> None:
    body = client.get("/v1/features").get_json()
    assert body["contract_hash"] == contract_hash()
    assert set(body["record_schema"]["properties"]) >= {f.name for f in record_fields()}


def test_outcome_is_recorded_for_an_assessed_complaint(app: Flask, record: dict[str, Any]) -> None:
    client = app.test_client()
    aid = client.post("/v1/assessments", json=record).get_json()["id"]
    response = client.post("/v1/outcomes", json={"assessment_id": aid, "complaint": "pfp",
                                                 "hip_driver": True, "confirmed_on": "2026-03-01"})
    assert response.status_code == 201
    with app.app_context():
        [row] = get_store().rows(outcomes)
    assert (row["assessment_id"], row["complaint"], row["hip_driver"]) == (aid, "pfp", True)


@pytest.mark.parametrize("change,status,rule", [
    ({"complaint": "lbp"}, 422, "assessed"),
    ({"hip_driver": "yes"}, 422, "type"),
    ({"confirmed_on": "March"}, 422, "format"),
    ({"assessment_id": "nope"}, 404, None),
])
def test_bad_outcome_is_rejected(client: FlaskClient, record: dict[str, Any],
                                 change: dict[str, Any], status: int, rule: str | None) -> None:
    aid = client.post("/v1/assessments", json=record).get_json()["id"]
    body = {"assessment_id": aid, "complaint": "pfp", "hip_driver": True, **change}
    response = client.post("/v1/outcomes", json=body)
    assert response.status_code == status
    if rule:
        assert response.get_json()["error"]["errors"][0]["rule"] == rule


def test_questionnaire_route_serves_fhir(client: FlaskClient) -> None:
    response = client.get("/fhir/Questionnaire/gmed-intake")
    assert response.mimetype == FHIR and response.get_json()["id"] == "gmed-intake"
    assert client.get("/fhir/CodeSystem/findings").get_json()["resourceType"] == "CodeSystem"


# ---------------------------------------------------------------- error mapping


def test_wrong_media_type_is_415(client: FlaskClient, record: dict[str, Any]) -> None:
    response = client.post("/v1/assessments", data=json.dumps(record), content_type="text/plain")
    assert response.status_code == 415 and response.get_json()["error"]["code"]


def test_body_over_the_cap_is_413(make_app: Callable[..., Flask]) -> None:
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = client.post("/v1/assessments", data="{" + " " * 2048 + "}",
                           content_type="application/json")
    assert response.status_code == 413


def test_body_over_the_cap_on_cds_hooks_is_an_operation_outcome(
        make_app: Callable[..., Flask]) -> None:
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = client.post("/cds-services/gmed-driver", data="{" + " " * 2048 + "}",
                           content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("body", ["{not json", "NaN", '{"a": Infinity}', "[" * 5000])
def test_malformed_json_is_400(client: FlaskClient, body: str) -> None:
    response = client.post("/v1/assessments", data=body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.status_code != 500


def test_unknown_route_and_method_are_json_errors(client: FlaskClient) -> None:
    assert client.get("/nope").get_json()["error"]["code"] == "not-found"
    response = client.get("/v1/assessments")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


# ---------------------------------------------------------------- operations


def test_healthz_is_alive(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "alive"}


def test_readyz_is_ready_with_a_verified_model(client: FlaskClient) -> None:
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and body["checks"]["store"] == "ok"


def test_readyz_is_503_without_a_model(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    client = make_app(MODEL=str(tmp_path / "no-model-here")).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["checks"]["model"] == "unavailable"
    assessed = client.post("/v1/assessments", json=load_example("runner_pfp_hip_driven"))
    assert assessed.status_code == 503 and str(tmp_path) not in assessed.get_data(as_text=True)


def test_readyz_is_503_when_the_store_does_not_answer(make_app: Callable[..., Flask],
                                                      tmp_path: Path) -> None:
    client = make_app(DATABASE_URL=f"sqlite:///{tmp_path}/missing/dir/db.sqlite3").test_client()
    assert client.get("/readyz").status_code == 503


def test_metrics_count_requests_and_predictions(client: FlaskClient,
                                                record: dict[str, Any]) -> None:
    client.post("/v1/assessments", json=record)
    client.post("/v1/assessments", json={})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gmed_http_requests_total{method="POST",route="/v1/assessments",status="201"} 1.0' in text
    assert 'gmed_http_errors_total{route="/v1/assessments",status="422"} 1.0' in text
    assert 'gmed_predictions_total{band=' in text and 'complaint="pfp"' in text
    assert 'gmed_model_info{model_id="gmed-driver",version="0.0.1-test"} 1.0' in text
    assert "gmed_http_request_duration_seconds_bucket" in text
