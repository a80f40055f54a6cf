"""Issue 14: every integration example runs through the app, signed by examples/sign_request.py
with the development key pair."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
spec = importlib.util.spec_from_file_location("sign_request", EXAMPLES / "sign_request.py")
assert spec and spec.loader
sign_request = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sign_request)

CASES = {"cds-hooks/patient-view.json": ("cards", 200),
         "fhir/transaction-bundle.json": ("RiskAssessment", 201),
         "fhir/questionnaire-response.json": ("RiskAssessment", 201)}


@pytest.fixture
def dev_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(AUTH="jwt", JWT_ISSUERS={sign_request.DEV_ISSUER: {
        "jwks_file": str(EXAMPLES / "dev-keys" / "DEVELOPMENT-ONLY-ehr-jwks.json")}})


@pytest.mark.parametrize("name", sorted(CASES))
def test_signed_example_is_answered(dev_app: Flask, name: str) -> None:
    url, headers, body = sign_request.signed_request(EXAMPLES / name, "http://localhost")
    response = dev_app.test_client().post(url.removeprefix("http://localhost"), data=body,
                                          headers=headers)
    expected, status = CASES[name]
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    answer = response.get_json()
    if expected == "cards":
        assert answer["cards"] and "%" in answer["cards"][0]["summary"]
    else:
        assert answer["resourceType"] == expected and answer["prediction"]


def test_unsigned_example_is_refused(dev_app: Flask) -> None:
    body = json.loads((EXAMPLES / "cds-hooks/patient-view.json").read_text())
    assert dev_app.test_client().post("/cds-services/gmed-driver", json=body).status_code == 401


def test_dry_run_prints_the_signed_call(capsys: pytest.CaptureFixture[str]) -> None:
    assert sign_request.main([str(EXAMPLES / "fhir/transaction-bundle.json"), "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["url"].endswith("/v1/assessments")
    assert printed["headers"]["Authorization"].startswith("Bearer ")


def test_missing_example_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert sign_request.main(["no/such.json", "--dry-run"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_private_key_is_marked_development_only() -> None:
    keys = list((EXAMPLES / "dev-keys").iterdir())
    assert keys and all("DEVELOPMENT-ONLY" in k.name or k.name == "README.md" for k in keys)
