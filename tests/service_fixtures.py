"""Fixtures for the service tests: apps on the tiny model, signing keys, tokens, CDS Hooks calls.

Import the fixtures you use from here (``from tests.service_fixtures import app, client``);
``tiny_model`` comes from ``conftest.py``.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from flask.testing import FlaskClient

from cds.features import BY_NAME, ICD10CM
from cds.fhir import QUESTIONNAIRE_URL, UCUM
from cds.model import Model
from service import create_app
from service.http.logs import JsonFormatter

ISSUER = "https://ehr.example.org"
BASE = "http://localhost"


@pytest.fixture
def make_app(tiny_model: Model, tmp_path: Path) -> Callable[..., Flask]:
    """Build an app on the tiny model with a fresh SQLite store; keyword args override config."""
    def build(**config: Any) -> Flask:
        settings: dict[str, Any] = {
            "MODEL": tiny_model, "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
            "PSEUDONYM_SECRET": "test-secret", "AUTH": "off", "UI_AUTH": "off",
            "ENVIRONMENT": "development", "TESTING": True,
            "OUTBOUND_PRIVATE_HOSTS": ["127.0.0.1"],  # the tests' EHRs and key servers
            **config}
        return create_app(settings)
    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def api(make_app: Callable[..., Flask]) -> Flask:
    """An app for fuzzing: an unexpected error is answered (a 500 the test can see), not raised."""
    return make_app(ENVIRONMENT="development", PSEUDONYM_SECRET="fuzz-secret",
                    SQLITE_SYNCHRONOUS="NORMAL", PROPAGATE_EXCEPTIONS=False)


@pytest.fixture
def service_logs() -> Iterator[io.StringIO]:
    """Everything the ``service`` loggers write during the test (DEBUG and up), as the service's
    JSON formatter writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("service")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# ---------------------------------------------------------------------------- keys and tokens


class Signer:
    """An EHR's signing keys (ES384 and RS384) and its JWKS."""

    def __init__(self) -> None:
        self.ec = ec.generate_private_key(ec.SECP384R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key, alg in (("ec-1", self.ec, "ES384"), ("rsa-1", self.rsa, "RS384")):
            jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def token(self, aud: str, *, alg: str = "ES384", kid: str | None = None,
              iss: str = ISSUER, lifetime: int = 300, iat: int | None = None,
              jti: str | None = None, headers: dict[str, Any] | None = None,
              drop: tuple[str, ...] = ()) -> str:
        now = int(time.time()) if iat is None else iat
        claims = {"iss": iss, "aud": aud, "iat": now, "exp": now + lifetime,
                  "jti": jti or str(uuid.uuid4()), "sub": "ehr-client"}
        for name in drop:
            claims.pop(name)
        key: Any = self.ec if alg.startswith("ES") else self.rsa
        kid = kid or ("ec-1" if alg.startswith("ES") else "rsa-1")
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **(headers or {})})


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def secure_app(make_app: Callable[..., Flask], signer: Signer, tmp_path: Path) -> Flask:
    jwks_file = tmp_path / "ehr-jwks.json"
    jwks_file.write_text(json.dumps(signer.jwks()))
    return make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jwks_file": str(jwks_file)}},
                    CORS_ORIGINS=["https://ehr.example.org"])


# ---------------------------------------------------------------------------- FHIR and hooks


def observation(feature: str, **value: Any) -> dict[str, Any]:
    coding = BY_NAME[feature].coding
    return {"resourceType": "Observation", "status": "final",
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2026-01-10",
            "code": {"coding": [{"system": coding.system, "code": coding.code}]}, **value}


def quantity(value: float, code: str) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "system": UCUM, "code": code}}


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


def runner_prefetch(*, n_extra: int = 0) -> dict[str, Any]:
    """A realistic prefetch: a female runner with patellofemoral pain, exam and squat video;
    ``n_extra`` older pain scores pad the Observation bundle (~50 resources with 40)."""
    observations = [
        observation("bmi_kg_m2", **quantity(22.4, "kg/m2")),
        observation("pain_nrs", valueInteger=6),
        observation("hip_abduction_left_nm_per_kg", **quantity(1.52, "N.m/kg")),
        observation("hip_abduction_right_nm_per_kg", **quantity(1.08, "N.m/kg")),
        observation("trendelenburg_sign", valueBoolean=True),
        observation("trochanter_tenderness", valueBoolean=True),
        observation("single_leg_squat_knee_fppa_deg", **quantity(18.5, "deg")),
        observation("single_leg_squat_pelvic_drop_deg", **quantity(9.0, "deg")),
    ] + [observation("pain_nrs", valueInteger=5, effectiveDateTime=f"2025-{1 + i % 12:02d}-01")
         for i in range(n_extra)]
    intake = {"resourceType": "QuestionnaireResponse", "questionnaire": QUESTIONNAIRE_URL,
              "status": "completed", "authored": "2026-01-10",
              "subject": {"reference": "Patient/p1"},
              "item": [{"linkId": "intake", "item": [
                  {"linkId": "activity_profile", "answer": [{"valueCoding": {"code": "runner"}}]},
                  {"linkId": "side", "answer": [{"valueCoding": {"code": "right"}}]},
                  {"linkId": "pain_worse_single_leg_loading", "answer": [{"valueBoolean": True}]},
                  {"linkId": "rf_fever", "answer": [{"valueBoolean": False}]}]}]}
    return {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "female",
                    "birthDate": "1996-04-01"},
        "observations": searchset(*observations),
        "conditions": searchset({"resourceType": "Condition",
                                 "subject": {"reference": "Patient/p1"},
                                 "clinicalStatus": {"coding": [{"code": "active"}]},
                                 "code": {"coding": [{"system": ICD10CM, "code": "M22.2X1"}]}}),
        "intake": searchset(intake),
        "observations-intake": searchset(),  # no patient-reported Observations: the form has them
        "observations-movement": searchset(),  # no movement analysis nor raw dynamometer readings
        "observations-safety": searchset(),  # red flags answered on the form, not as Observations
    }


def hook_call(hook: str = "patient-view", prefetch: dict[str, Any] | None = None,
              **extra: Any) -> dict[str, Any]:
    context = {"patientId": "p1", "userId": "Practitioner/dr-1"}
    if hook == "encounter-start":
        context["encounterId"] = "e1"
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context,
            "prefetch": runner_prefetch() if prefetch is None else prefetch, **extra}


@pytest.fixture
def auth_header(signer: Signer) -> Callable[[str], dict[str, str]]:
    def header(path: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {signer.token(BASE + path, **kwargs)}"}
    return header


def iter_json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            yield json.loads(line)


@pytest.fixture
def outbound(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every outbound request the service would make (none is made): the URLs, in order."""
    from service.http import httpget

    made: list[str] = []

    def record(method: str, url: str, *args: Any, **kwargs: Any) -> httpget.Fetched:
        made.append(url)
        raise httpget.FetchError(httpget.UNREACHABLE)

    monkeypatch.setattr(httpget, "request", record)
    return made
