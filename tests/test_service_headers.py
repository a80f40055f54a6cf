"""Security headers on every route of the URL map, on error responses, and over real gunicorn."""

from __future__ import annotations

import gzip
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from werkzeug.routing import Rule

from service.http.headers import API_CSP, HSTS
from tests.service_fixtures import hook_call
from tests.test_service_gunicorn import served  # noqa: F401  (the real-gunicorn fixture)
from tests.test_service_limits import gzip_bomb

ARGS = {"aid": "no-such-id", "service_id": "gmed-driver", "instance": "no-such-instance",
        "filename": "ui.css", "cid": "complaints", "other": "no-such-other-id"}


def _url(rule: Rule) -> str:
    url = rule.rule
    for name in rule.arguments:
        url = url.replace(f"<{name}>", ARGS[name]).replace(f"<path:{name}>", ARGS[name])
    assert "<" not in url, f"no example argument for {rule.rule}"
    return url


def assert_secure(response: Any, page: bool, cacheable: bool = False,
                  https: bool = False) -> None:
    headers = response.headers
    where = f"{response.status_code} {response.request.path}"
    assert headers["X-Content-Type-Options"] == "nosniff", where
    assert headers["Referrer-Policy"] == "no-referrer", where
    if cacheable:
        assert "no-store" not in headers.get("Cache-Control", ""), where
    else:
        assert headers["Cache-Control"] == "no-store", where
    csp = headers["Content-Security-Policy"]
    if page:
        assert csp.startswith("default-src 'none'; script-src 'self'") and "frame-ancestors" in csp
    else:
        assert csp == API_CSP, where
    assert ("Strict-Transport-Security" in headers) == https, where
    if https:
        assert headers["Strict-Transport-Security"] == HSTS
    assert "Server" not in headers, where


def _walk(app: Flask, https: bool = False) -> set[str]:
    """Call every rule with every method it takes; check each answer's headers."""
    client = app.test_client()
    seen = set()
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            kwargs: dict[str, Any] = {}
            if method == "POST":
                kwargs = ({"data": {"age_years": "40"}} if rule.endpoint.startswith("ui.")
                          else {"json": hook_call() if rule.rule.endswith("<service_id>")
                                else {}})
            response = client.open(_url(rule), method=method, **kwargs)
            assert response.status_code != 500, (rule.rule, method)
            static = rule.endpoint == "ui.static"
            assert_secure(response, page=rule.endpoint.startswith("ui."),
                          cacheable=static and response.status_code == 200, https=https)
            seen.add(rule.endpoint)
    return seen


def test_every_route_of_the_url_map_carries_the_headers(app: Flask) -> None:
    seen = _walk(app)
    assert seen == {rule.endpoint for rule in app.url_map.iter_rules()}
    assert {"api.create_assessment", "cds_hooks.call_service", "ui.show_assessment",
            "ops.metrics", "openapi.openapi"} <= seen  # the walk reached every blueprint


def test_every_route_also_gets_hsts_behind_https(make_app: Callable[..., Flask]) -> None:
    _walk(make_app(BASE_URL="https://cds.example.org"), https=True)


@pytest.mark.parametrize("base", [None, "http://localhost:8080"])
def test_no_hsts_without_https(make_app: Callable[..., Flask], base: str | None) -> None:
    response = make_app(BASE_URL=base).test_client().get("/healthz")
    assert "Strict-Transport-Security" not in response.headers


def _errors(make_app: Callable[..., Flask], secure_app: Flask) -> dict[int, Any]:
    app = make_app(MAX_CONTENT_LENGTH=1024)
    app.add_url_rule("/boom", "boom", lambda: 1 / 0)
    client = app.test_client()
    slow = make_app(REQUEST_DEADLINE=0.01)
    slow.before_request(lambda: time.sleep(0.05))
    return {
        400: client.post("/v1/assessments", data="{", content_type="application/json"),
        401: secure_app.test_client().post("/cds-services/gmed-driver", json=hook_call()),
        404: client.get("/no/such/route"),
        405: client.delete("/v1/assessments"),
        413: client.post("/v1/assessments", data=b"[" + b" " * 2048 + b"]",
                         content_type="application/json"),
        415: client.post("/v1/assessments", data="x", content_type="text/plain"),
        422: client.post("/v1/assessments", json={"age_years": -1}),
        500: client.get("/boom"),
        503: slow.test_client().post("/v1/assessments", json={}),
    }


def test_error_responses_carry_the_headers(make_app: Callable[..., Flask],
                                           secure_app: Flask) -> None:
    for status, response in _errors(make_app, secure_app).items():
        assert response.status_code == status
        assert_secure(response, page=False)


def test_unsupported_encoding_and_bomb_errors_carry_the_headers(app: Flask) -> None:
    client = app.test_client()
    unsupported = client.post("/cds-services/gmed-driver", data=b"x", content_type="application/json",
                              headers={"Content-Encoding": "br"})
    bomb = gzip.compress(bytes(4 << 20))
    too_large = client.post("/v1/assessments", data=bomb, content_type="application/json",
                            headers={"Content-Encoding": "gzip"})
    assert (unsupported.status_code, too_large.status_code) == (415, 413)
    assert_secure(unsupported, page=False)
    assert_secure(too_large, page=False)


def test_clinician_page_errors_keep_the_page_policy(app: Flask) -> None:
    response = app.test_client().get("/ui/assessments/no-such-id")
    assert response.status_code == 404
    assert_secure(response, page=True)


def test_real_gunicorn_names_no_version(served: str) -> None:  # noqa: F811
    with urllib.request.urlopen(served + "/healthz", timeout=10) as response:
        headers = response.headers
    assert headers.get_all("Server") == ["gunicorn"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == API_CSP


def test_real_gunicorn_refuses_a_gzip_bomb_and_keeps_serving(served: str) -> None:  # noqa: F811
    bomb = gzip_bomb(1 << 30)
    request = urllib.request.Request(served + "/v1/assessments", data=bomb, headers={
        "Content-Type": "application/json", "Content-Encoding": "gzip"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert refused.value.headers["Cache-Control"] == "no-store"
    with urllib.request.urlopen(served + "/healthz", timeout=10) as response:
        assert response.status == 200


def test_real_gunicorns_own_errors_carry_the_headers_and_a_json_body(
        served: str, app: Flask) -> None:  # noqa: F811
    """A malformed request line never reaches the app: gunicorn answers it, as the app would."""
    host, port = served.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"NOT A REQUEST LINE\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    assert status.startswith("HTTP/1.1 400")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "http-400" and b"NOT A REQUEST" not in body
    flask_error = app.test_client().get("/no-such-route")  # the app's own error headers
    for name in ("X-Content-Type-Options", "Referrer-Policy", "Cache-Control",
                 "Content-Security-Policy"):
        assert headers[name] == flask_error.headers[name], name
