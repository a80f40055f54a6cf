"""Operational logs carry no patient data and no tokens.

A full run of the service (JSON API, FHIR input, CDS Hooks with prefetch and FHIR access token,
feedback, outcomes, rejected tokens, invalid and malformed input, errors) is logged through the
service's own JSON formatter; the text is then scanned for every sensitive value that went in.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from flask import Flask

from tests.conftest import load_example
from tests.service_fixtures import BASE, Signer, hook_call, iter_json_lines

PATIENT = "patient-7f3a9c"
FHIR_TOKEN = "fhir-access-token-5e1d0b"
COMMENT = "clinician-comment-91c2"
ODD_BMI = 23.4567


def _full_run(app: Flask, signer: Signer) -> list[str]:
    """Exercise every route that sees patient data or tokens; return the tokens used."""
    client = app.test_client()
    tokens: list[str] = []

    def auth(path: str, **kwargs: object) -> dict[str, str]:
        token = signer.token(BASE + path, **kwargs)  # type: ignore[arg-type]
        tokens.append(token)
        return {"Authorization": f"Bearer {token}"}

    record = {**load_example("runner_pfp_hip_driven"), "patient_id": PATIENT, "bmi_kg_m2": ODD_BMI}
    created = client.post("/v1/assessments", json=record, headers=auth("/v1/assessments"))
    assert created.status_code == 201
    bad = {**record, "age_years": 7}
    assert client.post("/v1/assessments", json=bad,
                       headers=auth("/v1/assessments")).status_code == 422
    call = hook_call(fhirServer="https://ehr.example.org/fhir", fhirAuthorization={
        "access_token": FHIR_TOKEN, "token_type": "Bearer", "expires_in": 60, "scope": "x",
        "subject": "gmed"})
    call["context"]["patientId"] = PATIENT
    call["prefetch"]["patient"]["id"] = PATIENT
    for bundle in ("observations", "conditions", "intake"):
        for entry in call["prefetch"][bundle]["entry"]:
            entry["resource"]["subject"] = {"reference": f"Patient/{PATIENT}"}
    path = "/cds-services/gmed-driver"
    cards = client.post(path, json=call, headers=auth(path)).get_json()["cards"]
    client.post(f"{path}/feedback", headers=auth(f"{path}/feedback"), json={"feedback": [{
        "card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00Z",
        "overrideReason": {"userComment": COMMENT}}]})
    client.post("/v1/outcomes", headers=auth("/v1/outcomes"), json={
        "assessment_id": created.get_json()["id"], "complaint": "pfp", "hip_driver": True})
    rejected = signer.token(BASE + "/v1/features", iss="https://not-allowed.example.com")
    tokens.append(rejected)
    assert client.get("/v1/features", headers={"Authorization": f"Bearer {rejected}"}
                      ).status_code == 401
    replay = auth("/v1/features")
    client.get("/v1/features", headers=replay)
    assert client.get("/v1/features", headers=replay).status_code == 401
    client.post("/v1/assessments", data=json.dumps(record) + "}", content_type="application/json",
                headers=auth("/v1/assessments"))
    client.get(f"/v1/assessments/{PATIENT}", headers=auth(f"/v1/assessments/{PATIENT}"))
    return tokens


def test_logs_of_a_full_run_hold_no_patient_data_and_no_tokens(
        secure_app: Flask, signer: Signer, service_logs: io.StringIO) -> None:
    tokens = _full_run(secure_app, signer)
    text = service_logs.getvalue()
    lines = list(iter_json_lines(text))
    assert len(lines) >= 10 and any(line.get("reason") == "jti replayed" for line in lines)
    secrets = [PATIENT, FHIR_TOKEN, COMMENT, str(ODD_BMI), *tokens,
               *(t.split(".")[2] for t in tokens)]
    leaked = [s for s in secrets if s in text]
    assert leaked == []


def test_every_log_line_is_json_with_known_fields(
        make_app: Callable[..., Flask], service_logs: io.StringIO) -> None:
    client = make_app().test_client()
    client.post("/v1/assessments", json={"complaints": ["pfp"], "age_years": 200})
    client.get("/healthz")
    allowed = {"ts", "level", "logger", "msg", "route", "method", "status", "duration_ms",
               "request_id", "error", "code", "reason", "model_id", "model_version", "workers",
               "auth", "count", "exception"}
    lines = [line for line in service_logs.getvalue().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert set(json.loads(line)) <= allowed
