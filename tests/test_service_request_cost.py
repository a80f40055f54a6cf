"""The per-request shortcuts of issue 16 answer exactly what the general paths answer: the
pseudonym's digest, the content negotiation, the security headers, the cookie session and
Flask's sync check (each is taken on every assessment, so each is pinned against the slow way)."""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient

from service.http.headers import API_CSP
from service.security import keys
from tests.conftest import load_example

FHIR = "application/fhir+json"
REFERENCES = ["runner-42", "e\u0301 (NFD)", 'a"b\\c\n\t\x00\x1f', "\u2028\u2029", "\ud800 lone",
              "😀 mrn", ""]
NAMESPACES = ["", "https://ehr.example/issuer", 'quote " and é', "\ud83d"]


def _slow_pseudonym(key: bytes, reference: str, namespace: str) -> str:
    message = json.dumps([namespace, unicodedata.normalize("NFC", reference)],
                         ensure_ascii=False)
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("reference", REFERENCES)
def test_pseudonym_is_the_hmac_of_the_json_array_text_for_any_reference(
        reference: str, namespace: str) -> None:
    for key in (b"k" * 32, b"another key"):  # the keyed state is kept per key, never mixed
        assert keys.pseudonym(key, reference, namespace) == _slow_pseudonym(
            key, reference, namespace)


@pytest.mark.parametrize(("accept", "media_type"), [
    ("application/json", "application/json"), (FHIR, FHIR), ("*/*", "application/json"),
    (" application/json ", "application/json")])
def test_an_accept_naming_one_offered_type_gets_that_type(client: FlaskClient, accept: str,
                                                           media_type: str) -> None:
    created = client.post("/v1/assessments", json=load_example("cyclist_itbs"),
                          headers={"Accept": accept})
    assert created.status_code == 201 and created.mimetype == media_type


def test_an_api_call_sets_no_cookie_and_no_vary(client: FlaskClient) -> None:
    created = client.post("/v1/assessments", json=load_example("cyclist_itbs"))
    assert created.status_code == 201
    assert "Set-Cookie" not in created.headers and "Vary" not in created.headers


def test_the_clinician_session_still_round_trips(make_app: Any) -> None:
    app = make_app(UI_AUTH="off")

    @app.get("/ui/test-session/<value>")
    def put(value: str) -> str:
        from flask import session
        session["probe"] = value
        return "set"

    @app.get("/ui/test-session")
    def read() -> str:
        from flask import session
        return str(session.get("probe"))

    client = app.test_client()
    assert "gmed_ui_session" in client.get("/ui/test-session/one").headers["Set-Cookie"]
    assert client.get("/ui/test-session").get_data(as_text=True) == "one"


def test_security_headers_replace_what_a_view_set_and_keep_its_policy(make_app: Any) -> None:
    app = make_app()

    @app.get("/v1/test-headers")
    def view() -> Response:
        response = Response("{}", mimetype="application/json")
        response.headers["X-Content-Type-Options"] = "sniff"
        response.headers.add("Cache-Control", "public")
        response.headers.add("Cache-Control", "max-age=60")
        response.headers["Content-Security-Policy"] = "default-src 'self'"
        response.headers["Server"] = "werkzeug"
        return response

    headers = app.test_client().get("/v1/test-headers").headers
    assert headers.get_all("X-Content-Type-Options") == ["nosniff"]
    assert headers.get_all("Cache-Control") == ["no-store"]
    assert headers.get_all("Content-Security-Policy") == ["default-src 'self'"]
    assert headers.get_all("Referrer-Policy") == ["no-referrer"]
    assert "Server" not in headers
    assert app.test_client().get("/ops/ping").headers["Content-Security-Policy"] == API_CSP


def test_sync_check_is_made_once_per_function_and_coroutines_are_still_caught(
        app: Flask) -> None:
    def view() -> str:
        return "ok"

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> str:
            return "ok"

    async def coroutine() -> str:
        return "ok"

    assert app.ensure_sync(view) is view and app.ensure_sync(view) is view
    unhashable = Unhashable()
    assert app.ensure_sync(unhashable) is unhashable
    for _ in range(2):  # asked twice: the second answer is the first's, not the function
        try:
            sync = app.ensure_sync(coroutine)
        except RuntimeError as e:  # without asgiref: Flask's own refusal, every time
            assert "async" in str(e)
        else:
            assert sync is not coroutine
