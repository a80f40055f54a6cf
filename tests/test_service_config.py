"""Configuration: production refuses development conveniences; every key is documented; the
README's first command (``make serve``) still starts in development mode on a fresh machine."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import service.config
from cds.model import Model
from service import create_app
from service.config import DEFAULTS, ConfigError
from tests.conftest import ROOT, load_example
from tests.service_fixtures import ISSUER

GOOD_SECRET = secrets.token_hex(32)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GMED_* variable of the developer's shell leaks into these apps."""
    for name in list(os.environ):
        if name.startswith("GMED_"):
            monkeypatch.delenv(name)


@pytest.fixture
def production(tiny_model: Model, tmp_path: Path, clean_env: None) -> Callable[..., Flask]:
    """Build an app with no ENVIRONMENT given (the default) and a valid production setup;
    keyword arguments override it."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": []}))

    def build(**config: Any) -> Flask:
        settings: dict[str, Any] = {
            "MODEL": tiny_model, "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
            "AUTH": "jwt", "JWT_ISSUERS": {ISSUER: {"jwks_file": str(jwks)}},
            "PSEUDONYM_SECRET": GOOD_SECRET, "SMART_CLIENT_ID": "gmed-cds",
            "BASE_URL": "https://cds.example.org", **config}
        return create_app({k: v for k, v in settings.items() if v is not ...})
    return build


def test_production_is_the_default_and_starts_when_configured(
        production: Callable[..., Flask]) -> None:
    app = production()
    assert app.config["ENVIRONMENT"] == "production"
    assert app.test_client().get("/healthz").status_code == 200


@pytest.mark.parametrize("override,names", [
    ({"AUTH": "off"}, "AUTH"),
    ({"JWT_ISSUERS": {}}, "JWT_ISSUERS"),
    ({"UI_AUTH": "off"}, "UI_AUTH"),
    ({"SMART_CLIENT_ID": None}, "SMART_CLIENT_ID"),
    ({"BASE_URL": None}, "BASE_URL"),  # else the audience would come from the Host header
    ({"BASE_URL": "https://user@cds.example.org"}, "BASE_URL"),
    ({"JWT_ISSUERS": {ISSUER: {"jwks": {"keys": []}, "fhir_servers": "https://ehr/fhir"}}},
     "JWT_ISSUERS"),
    ({"PSEUDONYM_SECRET": ...}, "PSEUDONYM_SECRET"),  # unset: the random per-instance key
    ({"PSEUDONYM_SECRET": ""}, "PSEUDONYM_SECRET"),
    ({"PSEUDONYM_SECRET": "test-secret"}, "PSEUDONYM_SECRET"),  # the tests' own value
    ({"PSEUDONYM_SECRET": "changeme"}, "PSEUDONYM_SECRET"),
    ({"PSEUDONYM_SECRET": GOOD_SECRET[:31]}, "PSEUDONYM_SECRET"),  # 31 bytes
    ({"PSEUDONYM_SECRET": "x" * 64}, "PSEUDONYM_SECRET"),  # long, but a placeholder
    ({"ENVIRONMENT": "staging"}, "ENVIRONMENT"),
])
def test_production_refuses_to_start(production: Callable[..., Flask], override: dict[str, Any],
                                     names: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{names} \(GMED_{names}\)"):
        production(**override)


def test_a_32_byte_secret_is_enough(production: Callable[..., Flask]) -> None:
    assert production(PSEUDONYM_SECRET=GOOD_SECRET[:32]).config["ENVIRONMENT"] == "production"


def test_refusal_comes_from_the_environment_variables_too(
        monkeypatch: pytest.MonkeyPatch, clean_env: None, tmp_path: Path) -> None:
    monkeypatch.setenv("GMED_AUTH", "off")
    monkeypatch.setenv("GMED_DATABASE_URL", f"sqlite:///{tmp_path / 's.sqlite3'}")
    with pytest.raises(ConfigError, match="AUTH"):
        create_app()
    monkeypatch.setenv("GMED_ENVIRONMENT", "development")
    assert create_app({"PSEUDONYM_SECRET": "dev"}).config["AUTH"] == "off"


def test_development_allows_what_production_refuses(production: Callable[..., Flask]) -> None:
    app = production(ENVIRONMENT="development", AUTH="off", JWT_ISSUERS={},
                     PSEUDONYM_SECRET="test-secret")
    assert app.test_client().get("/healthz").status_code == 200


@pytest.mark.parametrize("key,value", [
    ("FHIR_MAX_RESOURCES", 0), ("JSON_MAX_DEPTH", "deep"), ("MAX_CONTENT_LENGTH", None),
    ("REQUEST_DEADLINE", -1), ("REQUEST_DEADLINE", True)])
def test_limits_must_be_positive_numbers(make_app: Callable[..., Flask], key: str,
                                         value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"^{key} \(GMED_{key}\)"):
        make_app(**{key: value})


def test_every_key_is_in_the_documented_table() -> None:
    doc = service.config.__doc__ or ""
    documented = set(re.findall(r"^``([A-Z_]+)``", doc, re.M))
    assert documented == set(DEFAULTS)


def _serve_env() -> dict[str, str]:
    """The environment the Makefile's ``serve`` recipe gives gunicorn (its defaults)."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nserve:", 1)[1].split("\n\n", 1)[0]
    return dict(re.findall(r"(GMED_\w+)=\$\$\{GMED_\w+:-([^}]*)\}", recipe))


def test_make_serve_starts_in_development_on_a_fresh_machine(
        monkeypatch: pytest.MonkeyPatch, clean_env: None, tmp_path: Path) -> None:
    """``make serve`` sets no secret and no issuers: development mode, and a random pseudonym
    key written in the (here: fresh, temporary) instance folder."""
    env = _serve_env()
    assert env == {"GMED_ENVIRONMENT": "development", "GMED_AUTH": "off", "GMED_UI_AUTH": "off",
                   "GMED_OUTBOUND_PRIVATE_HOSTS": "127.0.0.1,localhost"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path / "instance"))
    app = create_app()  # the shipped model and the SQLite store in the instance folder
    response = app.test_client().post("/v1/assessments", json=load_example("runner_pfp_hip_driven"))
    assert response.status_code == 201
    page = app.test_client().get(f"/ui/assessments/{response.get_json()['id']}")
    assert page.status_code == 200  # the clinician page needs no EHR launch in development
    assert (tmp_path / "instance" / "pseudonym.key").stat().st_size >= 32


# ------------------------------------------------- production's audience and /metrics (#18.6, 16)


def test_production_never_takes_the_audience_from_the_host_header(
        production: Callable[..., Flask], tmp_path: Path) -> None:
    """A token minted for ``http://evil.example/...`` and sent with ``Host: evil.example`` is
    refused; one for the configured BASE_URL is accepted whatever the Host header says."""
    from tests.service_fixtures import Signer, hook_call

    signer = Signer()
    jwks = tmp_path / "signer.json"
    jwks.write_text(json.dumps(signer.jwks()))
    app = production(JWT_ISSUERS={ISSUER: {"jwks_file": str(jwks)}})
    path = "/cds-services/gmed-driver"
    client = app.test_client()
    evil = client.post(path, json=hook_call(), base_url="http://evil.example", headers={
        "Authorization": f"Bearer {signer.token('http://evil.example' + path)}"})
    assert evil.status_code == 401
    ours = client.post(path, json=hook_call(), base_url="http://evil.example", headers={
        "Authorization": f"Bearer {signer.token('https://cds.example.org' + path)}"})
    assert ours.status_code == 200


def test_production_metrics_are_closed_without_a_token(production: Callable[..., Flask]) -> None:
    assert production().test_client().get("/metrics").status_code == 401


def test_metrics_need_the_configured_bearer_token(production: Callable[..., Flask]) -> None:
    token = secrets.token_hex(32)
    client = production(METRICS_TOKEN=token).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {token}"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and b"# TYPE" in ok.data


def test_development_metrics_are_open_without_a_token(production: Callable[..., Flask]) -> None:
    app = production(ENVIRONMENT="development")
    assert app.test_client().get("/metrics").status_code == 200
