"""Security headers on every response, success or error, in one place.

Applied in ``after_request`` (so error responses - 401, 404, 405, 413, 415, 500, 503 - get them
too):

* ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` everywhere;
* ``Cache-Control: no-store`` everywhere except the clinician page's static files (CSS, scripts:
  no patient data), so no answer carrying patient data (API, hooks, pages) is kept by a browser
  or proxy;
* ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`` unless the response
  already has one: JSON and text cannot load or run anything, nor be framed. The clinician page
  sets its own (:func:`page_csp`, from :mod:`service.ui.pages`, which the EHR may frame);
* ``Strict-Transport-Security`` when ``BASE_URL`` is ``https://``: browsers then never call the
  service in clear;
* no ``Server`` header from the application (gunicorn sends ``Server: gunicorn``, no version).

gunicorn answers some requests itself, before the app sees them (a malformed request line, a
header over its limits): :func:`gunicorn_error` replaces its HTML error page with a JSON one
carrying the same headers (installed in each worker by ``service/gunicorn_conf.py``).
"""

from __future__ import annotations

import json
import socket

from flask import Flask, Response, current_app, request
from gunicorn import util as gunicorn_util

API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"
# what :func:`apply` gives an error response; gunicorn's own errors get the same (a test checks)
SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                    ("Cache-Control", "no-store"), ("Content-Security-Policy", API_CSP))
STATIC_ENDPOINTS = frozenset({"ui.static"})


def page_csp(frame_ancestors: str) -> str:
    """The clinician page's policy: its own scripts, styles and images only, no inline code,
    forms posted only to itself, framed only by ``frame_ancestors``."""
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
            f"frame-ancestors {frame_ancestors}")


def is_cacheable() -> bool:
    """May this response be cached? Only a static asset served successfully."""
    return request.endpoint in STATIC_ENDPOINTS


def apply(response: Response) -> Response:
    """Add the security headers (see the module docstring) to ``response``.

    The response's header names are read once; a header it does not have yet is appended
    (``Headers.add``) rather than set (``Headers.set`` scans and rewrites the list each time):
    the same headers, a quarter of the cost, on every response (issue 16)."""
    headers = response.headers
    existing = {name.lower() for name, _ in headers}

    def put(name: str, value: str) -> None:
        if name.lower() in existing:
            headers[name] = value
        else:
            headers.add(name, value)

    put("X-Content-Type-Options", "nosniff")
    put("Referrer-Policy", "no-referrer")
    if not is_cacheable() or response.status_code >= 400:
        put("Cache-Control", "no-store")
    if "content-security-policy" not in existing:
        headers.add("Content-Security-Policy", API_CSP)
    base = current_app.config.get("BASE_URL")
    if base and str(base)[:8].lower() == "https://":
        put("Strict-Transport-Security", HSTS)
    if "server" in existing:
        headers.remove("Server")
    return response


def gunicorn_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, answered as the app answers errors: a JSON body that
    names the rule (never echoing what the client sent) and the security headers."""
    body = json.dumps({"error": {"code": "http-" + str(status_int), "message": reason}}).encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in (
        ("Connection", "close"), ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))), *SECURITY_HEADERS))
    gunicorn_util.write_nonblock(sock, f"HTTP/1.1 {status_int} {reason}\r\n{head}\r\n".encode(
        "latin-1") + body)


def init_app(app: Flask) -> None:
    """Register :func:`apply` for every response."""
    app.after_request(apply)
