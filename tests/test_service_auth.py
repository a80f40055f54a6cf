"""Auth as CDS Hooks 2.0 describes it: one test per JWT rule, public routes, CORS, the dev switch."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from tests.service_fixtures import BASE, ISSUER, Signer, hook_call

URL = "/cds-services/gmed-driver"


def call(app: Flask, token: str | None, path: str = URL) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    client = app.test_client()
    if path.startswith("/cds-services/"):
        return client.post(path, json=hook_call(), headers=headers)
    return client.get(path, headers=headers)


def assert_401(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.get_json()
    assert body == {"resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "login"}]}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_es384_token_for_this_endpoint_is_accepted(secure_app: Flask, signer: Signer) -> None:
    assert call(secure_app, signer.token(BASE + URL)).status_code == 200


def test_rs384_token_is_accepted(secure_app: Flask, signer: Signer) -> None:
    assert call(secure_app, signer.token(BASE + URL, alg="RS384")).status_code == 200


def test_discovery_needs_a_token_for_its_own_url(secure_app: Flask, signer: Signer) -> None:
    assert_401(call(secure_app, None, "/cds-services"))
    ok = call(secure_app, signer.token(BASE + "/cds-services"), "/cds-services")
    assert ok.status_code == 200


def test_no_token_is_401_without_detail(secure_app: Flask) -> None:
    assert_401(call(secure_app, None))


def test_garbage_token_is_401(secure_app: Flask) -> None:
    assert_401(call(secure_app, "not.a.jwt"))


def test_alg_none_is_rejected(secure_app: Flask) -> None:
    now = int(time.time())
    token = _b64({"alg": "none", "typ": "JWT", "kid": "ec-1"}) + "." + _b64(
        {"iss": ISSUER, "aud": BASE + URL, "iat": now, "exp": now + 60, "jti": "x"}) + "."
    assert_401(call(secure_app, token))


def test_hmac_signed_with_the_public_key_is_rejected(secure_app: Flask, signer: Signer) -> None:
    # the classic algorithm confusion: the public JWK used as an HMAC secret
    public = json.dumps(signer.jwks()["keys"][0]).encode()
    now = int(time.time())
    signing_input = _b64({"alg": "HS384", "typ": "JWT", "kid": "ec-1"}) + "." + _b64(
        {"iss": ISSUER, "aud": BASE + URL, "iat": now, "exp": now + 60, "jti": "hmac"})
    mac = hmac.new(public, signing_input.encode(), hashlib.sha384).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert_401(call(secure_app, token))


def test_other_asymmetric_algorithm_is_rejected(secure_app: Flask) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": BASE + URL, "iat": now, "exp": now + 60,
                        "jti": "es256"}, p256, algorithm="ES256", headers={"kid": "ec-1"})
    assert_401(call(secure_app, token))


def test_token_signed_by_another_key_is_rejected(secure_app: Flask) -> None:
    impostor = Signer()  # same kid, different key
    assert_401(call(secure_app, impostor.token(BASE + URL)))


def test_wrong_audience_is_rejected(secure_app: Flask, signer: Signer) -> None:
    assert_401(call(secure_app, signer.token(BASE + "/cds-services/other-service")))


def test_audience_may_be_a_list_holding_the_endpoint(secure_app: Flask, signer: Signer) -> None:
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": [BASE + URL], "iat": now, "exp": now + 60,
                        "jti": "list-aud"}, signer.ec, algorithm="ES384", headers={"kid": "ec-1"})
    assert call(secure_app, token).status_code == 200


def test_expired_token_is_rejected(secure_app: Flask, signer: Signer) -> None:
    assert_401(call(secure_app, signer.token(BASE + URL, iat=int(time.time()) - 600,
                                             lifetime=300)))


def test_token_living_too_long_is_rejected(secure_app: Flask, signer: Signer) -> None:
    assert_401(call(secure_app, signer.token(BASE + URL, lifetime=86400)))


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "iss", "aud"])
def test_missing_required_claim_is_rejected(secure_app: Flask, signer: Signer, claim: str) -> None:
    assert_401(call(secure_app, signer.token(BASE + URL, drop=(claim,))))


def test_replayed_jti_is_rejected(secure_app: Flask, signer: Signer) -> None:
    token = signer.token(BASE + URL, jti="once-only")
    assert call(secure_app, token).status_code == 200
    assert_401(call(secure_app, token))


def test_unknown_kid_is_rejected(secure_app: Flask, signer: Signer) -> None:
    assert_401(call(secure_app, signer.token(BASE + URL, kid="no-such-key")))


def test_issuer_not_on_the_allowlist_is_rejected(secure_app: Flask, signer: Signer) -> None:
    assert_401(call(secure_app, signer.token(BASE + URL, iss="https://evil.example.com")))


def test_json_api_routes_need_a_token_too(secure_app: Flask, signer: Signer) -> None:
    response = secure_app.test_client().get("/v1/features")
    assert response.status_code == 401 and response.get_json() == {
        "error": {"code": "unauthorized", "message": ""}}
    ok = secure_app.test_client().get("/v1/features", headers={
        "Authorization": f"Bearer {signer.token(BASE + '/v1/features')}"})
    assert ok.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json",
                                  "/fhir/Questionnaire/gmed-intake", "/v1/model/card"])
def test_public_routes_need_no_token(secure_app: Flask, path: str) -> None:
    assert secure_app.test_client().get(path).status_code == 200


class _JwksServer(BaseHTTPRequestHandler):
    jwks: bytes = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.jwks)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jku(signer: Signer) -> Iterator[str]:
    _JwksServer.jwks = json.dumps(signer.jwks()).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


def test_allowlisted_jku_supplies_the_keys(make_app: Callable[..., Flask], signer: Signer,
                                           jku: str) -> None:
    app = make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jku": [jku]}})
    assert call(app, signer.token(BASE + URL, headers={"jku": jku})).status_code == 200


def test_jku_not_on_the_allowlist_is_never_fetched(make_app: Callable[..., Flask],
                                                   signer: Signer, jku: str) -> None:
    app = make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jku": ["https://keys.example.org/"]}})
    assert_401(call(app, signer.token(BASE + URL, headers={"jku": jku})))


def test_configured_base_url_is_the_audience(make_app: Callable[..., Flask], signer: Signer,
                                             tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    app = make_app(AUTH="jwt", BASE_URL="https://cds.example.org/",
                   JWT_ISSUERS={ISSUER: {"jwks_file": str(jwks)}})
    assert_401(call(app, signer.token(BASE + URL)))
    assert call(app, signer.token("https://cds.example.org" + URL)).status_code == 200


def test_cors_preflight_for_a_configured_origin(secure_app: Flask) -> None:
    response = secure_app.test_client().options(URL, headers={
        "Origin": "https://ehr.example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_cors_is_not_granted_to_other_origins(secure_app: Flask) -> None:
    response = secure_app.test_client().options(URL, headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_auth_off_is_said_loudly_at_start(make_app: Callable[..., Flask],
                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="service"):
        make_app(AUTH="off")
    assert any("AUTHENTICATION IS OFF" in r.getMessage() for r in caplog.records)


def test_auth_is_on_unless_turned_off(make_app: Callable[..., Flask]) -> None:
    app = make_app(AUTH="jwt")
    assert_401(call(app, None))
