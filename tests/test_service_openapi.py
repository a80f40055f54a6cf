"""The OpenAPI 3.1 document is accurate: schemathesis finds no server error and no response that
breaks the document (bounded examples per operation), and the record schema is the contract's.

schemathesis covers every operation three times: auth off (development), auth on in production
configuration with a fresh valid token per call (ES384, ``aud`` = the exact endpoint URL), and
auth on with no or an invalid token (every protected route answers 401, public ones never do).
The number of cases each run tried is written to ``out/reliability/fuzz.json``."""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from cds.features import record_json_schema
from service.routes.openapi import document
from service.security.auth import PROTECTED, PUBLIC
from tests.fuzz_report import record_cases
from tests.service_fixtures import BASE, ISSUER, Signer

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


class _CurrentApp:
    """A WSGI callable handing each request to the app of the running test: the document is
    loaded at import time (schemathesis needs it then), the app needs the tiny model fixture."""

    app: Flask | None = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


CURRENT = _CurrentApp()
schema = schemathesis.openapi.from_dict(document())
schema.app = CURRENT
# the runs with auth on skip the coverage phase (unexpected methods, boundary and negative
# values: auth-independent, and run above with auth off) to keep the suite fast
generated_only = schemathesis.openapi.from_dict(
    document(), config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}}))
generated_only.app = CURRENT


RUNS: dict[str, Counter[str]] = {"auth_off": Counter(), "auth_valid_token": Counter(),
                                  "auth_no_or_bad_token": Counter()}
BAD_CREDENTIALS = ("none", "empty", "basic", "garbage", "other-audience", "expired",
                   "unknown-issuer", "hmac", "alg-none", "unknown-kid", "no-jti")


CREDENTIALS_TRIED: Counter[str] = Counter()
STATUSES: dict[str, Counter[str]] = {run: Counter() for run in RUNS}


def _count(run: str, case: Any) -> None:
    RUNS[run][f"{case.method.upper()} {case.path}"] += 1


def _answered(run: str, response: Any) -> Any:
    STATUSES[run][str(response.status_code)] += 1
    return response


@pytest.fixture(autouse=True)
def _record_counts() -> Iterator[None]:
    """After each test: every run's cases so far (per operation, and per method and path tried
    by the coverage phase) to ``out/reliability/fuzz.json``."""
    yield
    for run, totals in RUNS.items():
        if totals:
            extra = {"credentials": dict(CREDENTIALS_TRIED)} if run == "auth_no_or_bad_token" else {}
            record_cases(f"schemathesis.{run}", sum(totals.values()), operations=len(totals),
                         statuses=dict(sorted(STATUSES[run].items())),
                         by_operation=dict(sorted(totals.items())), **extra)


METRICS_TOKEN = secrets.token_hex(32)


def _is_protected(path: str) -> bool:
    """Needs a credential: a JWT, or for ``/metrics`` the metrics token."""
    return path == "/metrics" or (path.startswith(PROTECTED) and not path.startswith(PUBLIC))


def _with_headers(case: Any, headers: dict[str, str]) -> None:
    """Replace the case's credentials (schemathesis drops ``call(headers=...)`` on some cases)."""
    kept = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.headers = {**kept, **headers}


def _served_path(case: Any) -> str:
    """The path as the service sees it (``request.path``: percent-decoded), for ``aud``."""
    return urllib.parse.unquote(case.formatted_path)


@pytest.fixture
def serve_open(make_app: Callable[..., Flask]) -> Iterator[None]:
    CURRENT.app = make_app(BATCH_MAX=5, ENVIRONMENT="development", PSEUDONYM_SECRET="test-secret")
    yield
    CURRENT.app = None


@pytest.fixture
def serve_secure(make_app: Callable[..., Flask], signer: Signer, tmp_path: Path) -> Iterator[None]:
    """Auth on, in production configuration (a generated secret, an issuer with its JWKS)."""
    jwks_file = tmp_path / "ehr-jwks.json"
    jwks_file.write_text(json.dumps(signer.jwks()))
    CURRENT.app = make_app(BATCH_MAX=5, AUTH="jwt", ENVIRONMENT="production",
                           PSEUDONYM_SECRET=secrets.token_hex(32), BASE_URL=BASE,
                           JWT_ISSUERS={ISSUER: {"jwks_file": str(jwks_file)}},
                           UI_AUTH="smart", SMART_CLIENT_ID="gmed-cds",
                           METRICS_TOKEN=METRICS_TOKEN)
    yield
    CURRENT.app = None


SCHEMATHESIS = settings(max_examples=12, deadline=None, derandomize=True,
                        suppress_health_check=list(HealthCheck))


@schema.parametrize()
@SCHEMATHESIS
def test_every_operation_conforms_to_the_document(case: Any, serve_open: None) -> None:
    _count("auth_off", case)
    _answered("auth_off", case.call_and_validate(checks=CHECKS))


@generated_only.parametrize()
@settings(SCHEMATHESIS, max_examples=30)
def test_every_operation_conforms_with_a_valid_token(case: Any, serve_secure: None,
                                                     signer: Signer) -> None:
    """A fresh token per call (its ``jti`` is single-use) for the exact URL called: never a 401."""
    _count("auth_valid_token", case)
    token = (METRICS_TOKEN if _served_path(case) == "/metrics"
             else signer.token(BASE + _served_path(case)))
    _with_headers(case, {"Authorization": f"Bearer {token}"})
    response = _answered("auth_valid_token", case.call_and_validate(checks=CHECKS))
    assert response.status_code != 401


def _bad_credential(kind: str, signer: Signer, aud: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    token = {
        "none": None, "empty": "", "basic": None, "garbage": "not.a.jwt",
        "other-audience": signer.token(BASE + "/v1/elsewhere"),
        "expired": signer.token(aud, iat=now - 4000, lifetime=300),
        "unknown-issuer": signer.token(aud, iss="https://intruder.example.org"),
        "hmac": jwt.encode(claims, "shared-secret-" * 4, algorithm="HS384",
                           headers={"kid": "ec-1"}),
        "alg-none": jwt.encode(claims, None, algorithm="none", headers={"kid": "ec-1"}),
        "unknown-kid": signer.token(aud, kid="ec-9"),
        "no-jti": signer.token(aud, drop=("jti",)),
    }[kind]
    if kind == "basic":
        return {"Authorization": "Basic ZWhyOnBhc3N3b3Jk"}
    return {} if token is None else {"Authorization": f"Bearer {token}"}


@generated_only.parametrize()
@settings(SCHEMATHESIS, max_examples=30)
def test_without_a_valid_token_protected_routes_answer_401(case: Any, serve_secure: None,
                                                           signer: Signer) -> None:
    """Each case gets the next of several bad credentials; a protected route answers 401 (with
    ``WWW-Authenticate: Bearer`` and no detail), a public one answers as documented; never 500."""
    _count("auth_no_or_bad_token", case)
    path = _served_path(case)
    kind = BAD_CREDENTIALS[sum(RUNS["auth_no_or_bad_token"].values()) % len(BAD_CREDENTIALS)]
    _with_headers(case, _bad_credential(kind, signer, BASE + path))
    CREDENTIALS_TRIED[kind] += 1
    if not _is_protected(path) or case.method.upper() == "OPTIONS":  # CORS preflight: no token
        response = _answered("auth_no_or_bad_token", case.call_and_validate(checks=CHECKS))
        assert response.status_code != 401
        return
    response = _answered("auth_no_or_bad_token", case.call())
    assert response.status_code == 401, (kind, case.method, path, response.status_code)
    assert response.headers.get("www-authenticate") == ["Bearer"]
    body = response.json()
    detail = body["error"]["message"] if "error" in body else body["issue"][0].get("diagnostics")
    assert not detail  # no reason given to the caller


def test_record_schema_is_the_contracts() -> None:
    published = document()["components"]["schemas"]["PatientRecord"]
    contract = {k: v for k, v in record_json_schema().items() if k not in ("$schema", "$id")}
    assert published == contract


def test_every_route_of_the_app_is_documented(app: Flask) -> None:
    documented = {path.replace("{", "<").replace("}", ">") for path in document()["paths"]}
    # the clinician pages (blueprint ``ui``) are HTML for people, not part of the machine API
    routes = {r.rule for r in app.url_map.iter_rules()
              if r.endpoint != "static" and not r.endpoint.startswith("ui.")}
    assert routes - documented == set()
