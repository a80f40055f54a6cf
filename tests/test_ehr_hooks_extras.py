"""Issue 14, 2026 extras: discovery version, OperationOutcome on every non-2xx of the FHIR and
CDS Hooks routes, override reasons served as a value set, the card's source is the model card."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.service_fixtures import hook_call, runner_prefetch


def test_discovery_gives_each_service_a_version(client: FlaskClient) -> None:
    services = client.get("/cds-services").get_json()["services"]
    assert services and all(isinstance(s["version"], str) and s["version"] for s in services)


def _no_patient() -> dict[str, object]:
    prefetch = runner_prefetch()
    del prefetch["patient"]
    return hook_call(prefetch=prefetch)


@pytest.mark.parametrize("method,path,body,status", [
    ("post", "/cds-services/nope", {}, 404),
    ("post", "/cds-services/gmed-driver", {"hook": "patient-view"}, 400),
    ("post", "/cds-services/gmed-driver", "no patient", 412),
    ("get", "/cds-services/gmed-driver", None, 405),
    ("post", "/cds-services/gmed-driver/feedback", {"feedback": [{"card": "x"}]}, 400),
    ("get", "/fhir/RiskAssessment/unknown", None, 404),
    ("get", "/fhir/CodeSystem/unknown", None, 404),
    ("post", "/fhir/metadata", {}, 405),
])
def test_every_non_2xx_of_fhir_and_hooks_routes_is_an_operation_outcome(
        app: Flask, method: str, path: str, body: object, status: int) -> None:
    client = app.test_client()
    payload = _no_patient() if body == "no patient" else body
    response = getattr(client, method)(path, json=payload) if payload is not None \
        else getattr(client, method)(path)
    assert response.status_code == status
    assert response.mimetype == "application/fhir+json"
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"]
    assert all(i["severity"] == "error" and i["code"] for i in outcome["issue"])


def test_override_reasons_of_the_cards_are_the_served_value_set(client: FlaskClient) -> None:
    [card, *_] = client.post("/cds-services/gmed-driver", json=hook_call()).get_json()["cards"]
    vs = client.get("/fhir/ValueSet/override-reasons").get_json()
    [include] = vs["compose"]["include"]
    served = client.get("/fhir/CodeSystem/override-reasons").get_json()
    assert {r["system"] for r in card["overrideReasons"]} == {include["system"], served["url"]}
    assert {r["code"] for r in card["overrideReasons"]} == {c["code"] for c in served["concept"]}


def test_card_source_is_the_model_card(client: FlaskClient) -> None:
    [card, *_] = client.post("/cds-services/gmed-driver", json=hook_call()).get_json()["cards"]
    assert card["source"]["url"].endswith("/v1/model/card")
    assert client.get("/v1/model/card").status_code == 200


def test_fetch_refused_names_the_allowlist_in_the_answer_and_the_log(
        make_app: Callable[..., Flask], service_logs: io.StringIO) -> None:
    app = make_app(FHIR_SERVER_ALLOWLIST=["https://trusted.example.org/"])
    body = hook_call(fhirServer="https://elsewhere.example.org/fhir",
                     fhirAuthorization={"access_token": "t", "token_type": "Bearer",
                                        "expires_in": 300, "scope": "patient/*.read",
                                        "subject": "cds"})
    del body["prefetch"]["patient"]
    response = app.test_client().post("/cds-services/gmed-driver", json=body)
    assert response.status_code == 412
    [issue] = response.get_json()["issue"]
    assert "FHIR_SERVER_ALLOWLIST" in issue["diagnostics"]
    assert '"reason": "FHIR_SERVER_ALLOWLIST"' in service_logs.getvalue()
    assert "elsewhere.example.org" not in service_logs.getvalue()
