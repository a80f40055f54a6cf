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
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from tests.local_http import QuietHandler
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


def test_our_algorithm_list_refuses_es256_even_with_a_valid_key_for_it(
        make_app: Callable[..., Flask], signer: Signer, tmp_path: Path) -> None:
    """The issuer's JWKS holds a P-256 key and the token is a valid ES256 signature by it:
    PyJWT would accept it; only our list (ES384, RS384) refuses it."""
    p256 = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(p256.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [*signer.jwks()["keys"],
                                         {**jwk, "kid": "p256", "alg": "ES256"}]}))
    app = make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jwks_file": str(jwks)}})
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": BASE + URL, "iat": now, "exp": now + 60,
                        "jti": "es256"}, p256, algorithm="ES256", headers={"kid": "p256"})
    assert jwt.decode(token, jwt.PyJWK({**jwk, "kid": "p256"}, algorithm="ES256"),
                      algorithms=["ES256"], audience=BASE + URL)["jti"] == "es256"
    assert_401(call(app, token))
    assert call(app, signer.token(BASE + URL)).status_code == 200  # ES384 from the same set


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


@pytest.mark.parametrize("leeway,expired_s,accepted", [
    (30, 10, True), (30, 45, False), (0, 10, False), (120, 100, True)])
def test_our_leeway_decides_how_long_after_exp_a_token_is_accepted(
        make_app: Callable[..., Flask], signer: Signer, tmp_path: Path, leeway: int,
        expired_s: int, accepted: bool) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    app = make_app(AUTH="jwt", JWT_LEEWAY=leeway, JWT_ISSUERS={ISSUER: {"jwks_file": str(jwks)}})
    token = signer.token(BASE + URL, iat=int(time.time()) - 300 - expired_s, lifetime=300)
    assert (call(app, token).status_code == 200) is accepted


def test_a_replay_inside_the_leeway_is_refused(secure_app: Flask, signer: Signer) -> None:
    """Expired 10 s ago, inside the 30 s leeway: accepted once. The replay record must outlive
    ``exp`` (another token's check purges what has lapsed in between), so the replay is refused."""
    token = signer.token(BASE + URL, iat=int(time.time()) - 310, lifetime=300)
    assert call(secure_app, token).status_code == 200
    assert call(secure_app, signer.token(BASE + URL)).status_code == 200  # purges lapsed ids
    assert_401(call(secure_app, token))


def test_the_replay_record_lasts_until_exp_plus_the_leeway(secure_app: Flask,
                                                           signer: Signer) -> None:
    from service.store import get_store, seen_tokens

    now = int(time.time())
    assert call(secure_app, signer.token(BASE + URL, iat=now, lifetime=300)).status_code == 200
    with secure_app.app_context():
        [row] = get_store().rows(seen_tokens)
    assert row["expires_at"] == now + 300 + secure_app.config["JWT_LEEWAY"]


def _signed(signer: Signer, claims: dict[str, Any]) -> str:
    """Claims PyJWT's encoder would refuse, validly signed (JWS over the raw JSON)."""
    payload = json.dumps(claims).replace("Infinity", "1e400").encode()
    return jwt.api_jws.PyJWS().encode(payload, signer.ec, algorithm="ES384",
                                      headers={"kid": "ec-1", "typ": "JWT"})


@pytest.mark.parametrize("iss", [[ISSUER], {"iss": ISSUER}, 7, None])
def test_an_iss_that_is_not_a_string_is_401_not_500(secure_app: Flask, signer: Signer,
                                                    iss: Any, service_logs: Any) -> None:
    now = int(time.time())
    token = _signed(signer, {"iss": iss, "aud": BASE + URL, "iat": now, "exp": now + 60,
                             "jti": f"iss-{type(iss).__name__}"})
    assert_401(call(secure_app, token))
    assert "iss is not a string" in service_logs.getvalue()


@pytest.mark.parametrize("claim,value", [("exp", "9999999999"), ("iat", "1"), ("exp", True),
                                         ("iat", 1e400)])
def test_exp_or_iat_that_is_not_a_number_is_401_not_500(secure_app: Flask, signer: Signer,
                                                        claim: str, value: Any) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": BASE + URL, "iat": now, "exp": now + 60,
              "jti": f"{claim}-{value!r}", claim: value}
    assert_401(call(secure_app, _signed(signer, claims)))


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


def test_an_issuer_is_verified_with_its_own_keys_only(make_app: Callable[..., Flask],
                                                      signer: Signer, tmp_path: Path) -> None:
    """Two allowlisted issuers: B's key cannot speak for A (our per-issuer key sets)."""
    other = Signer()
    files = {}
    for name, keys in (("a", signer), ("b", other)):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(keys.jwks()))
    app = make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jwks_file": str(files["a"])},
                                            "https://b.example": {"jwks_file": str(files["b"])}})
    assert call(app, other.token(BASE + URL, iss="https://b.example")).status_code == 200
    assert_401(call(app, other.token(BASE + URL, iss=ISSUER)))
    assert call(app, signer.token(BASE + URL, iss=ISSUER)).status_code == 200


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


class _JwksServer(QuietHandler):
    jwks: bytes = b"{}"

    def do_GET(self) -> None:
        self.send_body(self.jwks, content_type="application/json")


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


@pytest.mark.parametrize("method,path", [("OPTIONS", URL), ("OPTIONS", "/v1/assessments"),
                                         ("POST", "/ui/assessments")])
def test_an_anonymous_compressed_body_is_never_decompressed(
        secure_app: Flask, monkeypatch: pytest.MonkeyPatch, method: str, path: str) -> None:
    """A preflight (no token needed) or a public route with ``Content-Encoding``: 415 before
    any byte is inflated (RELIABILITY.md: no anonymous body is decompressed)."""
    import gzip

    import service.http.limits

    inflated: list[int] = []
    real = service.http.limits.inflate
    monkeypatch.setattr(service.http.limits, "inflate",
                        lambda *a: inflated.append(1) or real(*a))  # type: ignore[func-returns-value]
    response = secure_app.test_client().open(
        path, method=method, data=gzip.compress(b"[" + b"0," * 100_000 + b"0]"),
        headers={"Content-Encoding": "gzip", "Origin": "https://ehr.example.org",
                 "Access-Control-Request-Method": "POST"})
    assert response.status_code == 415 and inflated == []


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
