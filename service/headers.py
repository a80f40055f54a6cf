"""Security headers on every response, success or error, in one place.

Applied in ``after_request`` (so error responses - 401, 404, 405, 413, 415, 500, 503 - get them
too):

* ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` everywhere;
* ``Cache-Control: no-store`` everywhere except the clinician page's static files (CSS, scripts:
  no patient data), so no answer carrying patient data (API, hooks, pages) is kept by a browser
  or proxy;
* ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`` unless the response
  already has one: JSON and text cannot load or run anything, nor be framed. The clinician page
  sets its own (:func:`page_csp`, from :mod:`service.ui`, which the EHR may frame);
* ``Strict-Transport-Security`` when ``BASE_URL`` is ``https://``: browsers then never call the
  service in clear;
* no ``Server`` header from the application (gunicorn sends ``Server: gunicorn``, no version).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request

API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"
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
    """Add the security headers (see the module docstring) to ``response``."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    if not is_cacheable() or response.status_code >= 400:
        headers["Cache-Control"] = "no-store"
    headers.setdefault("Content-Security-Policy", API_CSP)
    if str(current_app.config.get("BASE_URL") or "").lower().startswith("https://"):
        headers["Strict-Transport-Security"] = HSTS
    headers.pop("Server", None)
    return response


def init_app(app: Flask) -> None:
    """Register :func:`apply` for every response."""
    app.after_request(apply)
