"""SMART App Launch (EHR launch) for the clinician page: who may see which assessment.

With ``UI_AUTH="smart"`` (the default) a page that shows patient data needs a signed-in session
for that patient, obtained the SMART way:

1. The EHR opens a page of ours (the CDS card's ``smart`` link) with ``iss`` (its FHIR base
   URL) and ``launch``. :func:`begin` accepts only an ``iss`` within a base URL of
   ``FHIR_SERVER_ALLOWLIST`` (scheme, host and port equal, path under the base's:
   :mod:`service.security.origins`) and, with ``AUTH="jwt"``, linked to a token issuer (the issuer's
   ``fhir_servers`` in ``JWT_ISSUERS``: the session sees what that issuer stored, and nothing of
   another's). It reads ``{iss}/.well-known/smart-configuration``, requires PKCE ``S256`` in its
   ``code_challenge_methods_supported`` and authorization and token endpoints on the ``iss``'s
   own origin (so the redirect can go nowhere else), and redirects the browser to the
   authorization endpoint (``response_type=code``, ``client_id=SMART_CLIENT_ID``, ``scope``,
   ``launch``, ``aud=iss``, a random ``state`` and a PKCE S256 challenge), keeping the state,
   the verifier and the page to return to in the session cookie.
2. The EHR signs the clinician in and sends the browser to ``/ui/smart/callback`` with a
   ``code``. :func:`callback` checks the ``state`` (and that the launch began less than
   ``PENDING_SECONDS`` ago), exchanges the code at the token endpoint (with the PKCE verifier),
   and keeps in the session only the keyed pseudonym of the launch's ``patient`` (in the linked
   issuer's namespace), that issuer, the user (``fhirUser``), a random session id (the CSRF
   token is bound to it) and an expiry (the token's ``expires_in``, at most
   ``SMART_SESSION_SECONDS``). The access token itself is not kept: the page reads nothing
   from the EHR.
3. :func:`patient_ref` is what the pages check: an assessment is shown only to a session of its
   patient (its stored, pseudonymous ``patient_ref``).

The session is Flask's signed cookie under its own key derived from the configured secret
(:mod:`service.security.keys`; every worker and instance derives the same), ``HttpOnly``, and
``SameSite=None; Secure; Partitioned`` over HTTPS (an EHR embeds the page in a cross-site
frame), ``Lax`` over plain HTTP. ``UI_AUTH="off"``
(development only; production refuses it) shows every page to anyone with its link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from flask import (
    Flask,
    Request,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask.typing import ResponseReturnValue

from ..config import base_url
from ..http import httpget
from ..store import get_store
from . import origins, patient_label
from .keys import get_keys

SESSION_KEY = "smart"
PENDING_KEY = "smart_pending"
MAX_BYTES = 1 << 20
PENDING_SECONDS = 600  # a launch not completed within this is refused at the callback


def enabled() -> bool:
    return bool(current_app.config["UI_AUTH"] == "smart")


def _signed_in() -> Mapping[str, Any] | None:
    signed_in = session.get(SESSION_KEY)
    if not isinstance(signed_in, Mapping) or float(signed_in.get("expires", 0)) < time.time():
        return None
    return signed_in


def patient_ref() -> str | None:
    """The pseudonymous patient this browser's SMART session is for, if it is still valid."""
    ref = (_signed_in() or {}).get("patient_ref")
    return ref if isinstance(ref, str) else None


def issuer() -> str | None:
    """The token issuer this session's EHR is linked to (``None``: auth off)."""
    value = (_signed_in() or {}).get("issuer")
    return value if isinstance(value, str) else None


def session_id() -> str:
    """This browser's random SMART session id, ``""`` without a valid session."""
    value = (_signed_in() or {}).get("sid")
    return value if isinstance(value, str) else ""


def is_launch(req: Request) -> bool:
    return bool(req.args.get("iss")) and bool(req.args.get("launch"))


def _refuse(title: str, message: str, status: int) -> ResponseReturnValue:
    return render_template("ui/error.html", title=title, message=message), status


def _allowed(iss: str) -> bool:
    return origins.allowed(iss, current_app.config["FHIR_SERVER_ALLOWLIST"])


def linked_issuer(iss: str) -> tuple[bool, str | None]:
    """(linked, issuer): the token issuer whose ``fhir_servers`` admit ``iss``. With auth off
    there is no issuer and every launch is linked to none (``(True, None)``)."""
    if current_app.config["AUTH"] == "off":
        return True, None
    for name, entry in current_app.config["JWT_ISSUERS"].items():
        servers = entry.get("fhir_servers") if isinstance(entry, Mapping) else None
        if isinstance(servers, list) and origins.allowed(iss, servers):
            return True, str(name)
    return False, None


def _private_hosts() -> list[str]:
    return list(current_app.config["OUTBOUND_PRIVATE_HOSTS"])


def _json(fetched: httpget.Fetched) -> dict[str, Any]:
    if fetched.status != 200:
        raise ValueError(f"http {fetched.status}")
    value = json.loads(fetched.body)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _timeout() -> float:
    return float(current_app.config["FHIR_TIMEOUT"])


def begin(return_to: str) -> ResponseReturnValue:
    """Start an EHR launch (``iss`` and ``launch`` in the query): redirect to the EHR's
    authorization endpoint, to come back to ``return_to`` (a path of this page) afterwards."""
    iss, launch = request.args.get("iss", ""), request.args.get("launch", "")
    client_id = current_app.config["SMART_CLIENT_ID"]
    if not client_id:
        return _refuse("Sign-in is not configured", "This service has no SMART client id "
                       "(SMART_CLIENT_ID). Ask its administrator.", 503)
    if not _allowed(iss):
        return _refuse("Unknown EHR", "The EHR that opened this page (its iss) is not one this "
                       "service is configured to trust (FHIR_SERVER_ALLOWLIST).", 400)
    linked, namespace = linked_issuer(iss)
    if not linked:
        return _refuse("Unknown EHR", "The EHR that opened this page (its iss) is not linked to "
                       "a token issuer (fhir_servers of an issuer in JWT_ISSUERS).", 400)
    try:
        config = _json(httpget.get(f"{iss.rstrip('/')}/.well-known/smart-configuration",
                                   {"Accept": "application/json"}, _timeout(), MAX_BYTES,
                                   private_hosts=_private_hosts()))
        authorize, token = config["authorization_endpoint"], config["token_endpoint"]
    except (httpget.FetchError, ValueError, KeyError, RecursionError):
        return _refuse("The EHR's sign-in is unavailable", "Its SMART configuration could not be "
                       "read. Try again from the EHR in a moment.", 502)
    if not (origins.same_origin(authorize, iss) and origins.same_origin(token, iss)
            and "#" not in authorize):
        return _refuse("The EHR's sign-in is not supported", "Its authorization or token "
                       "endpoint is not on the EHR's own address (its iss).", 502)
    methods = config.get("code_challenge_methods_supported")
    if not isinstance(methods, list) or "S256" not in methods:
        return _refuse("The EHR's sign-in is not supported", "It does not offer PKCE (S256), "
                       "which this service requires.", 502)
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    session[PENDING_KEY] = {"state": state, "verifier": verifier, "iss": iss,
                            "issuer": namespace, "token_endpoint": token,
                            "return_to": return_to, "started": time.time()}
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": _redirect_uri(),
        "launch": launch, "scope": current_app.config["SMART_SCOPES"], "state": state,
        "aud": iss, "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256"})
    return redirect(f"{authorize}{'&' if '?' in authorize else '?'}{query}", 302)


def _redirect_uri() -> str:
    return f"{base_url()}{url_for('ui.smart_callback')}"


def callback() -> ResponseReturnValue:
    """The EHR's answer: check the state, exchange the code, keep the patient and return."""
    pending = session.pop(PENDING_KEY, None)
    state = request.args.get("state", "")
    if not isinstance(pending, Mapping) or not state or not hmac.compare_digest(
            str(pending.get("state", "")), state) \
            or time.time() - float(pending.get("started", 0)) > PENDING_SECONDS:
        return _refuse("Sign-in could not be completed", "This sign-in was not started here, "
                       "has expired, or was already used. Open the page again from the EHR.", 400)
    if request.args.get("error") or not request.args.get("code"):
        return _refuse("Sign-in was declined", "The EHR did not authorize this page.", 403)
    form = urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": request.args["code"],
        "redirect_uri": _redirect_uri(), "client_id": current_app.config["SMART_CLIENT_ID"],
        "code_verifier": pending["verifier"]}).encode()
    try:
        answer = _json(httpget.request(
            "POST", str(pending["token_endpoint"]),
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            form, _timeout(), MAX_BYTES, private_hosts=_private_hosts()))
    except (httpget.FetchError, ValueError, RecursionError):
        return _refuse("Sign-in could not be completed", "The EHR did not issue a token. Open "
                       "the page again from the EHR.", 502)
    patient = answer.get("patient")
    if not isinstance(answer.get("access_token"), str) or not isinstance(patient, str) \
            or not patient:
        return _refuse("No patient in context", "The EHR's sign-in named no patient, so no "
                       "assessment can be shown. Open the page from a patient's chart.", 403)
    lifetime = float(current_app.config["SMART_SESSION_SECONDS"])
    expires_in = answer.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        lifetime = min(lifetime, max(0.0, float(expires_in)))
    user = answer.get("fhirUser")
    namespace = pending.get("issuer")
    namespace = namespace if isinstance(namespace, str) else None
    session[SESSION_KEY] = {"patient_ref": get_store().pseudonym(patient, namespace),
                            "issuer": namespace, "sid": secrets.token_urlsafe(16),
                            "user": user if isinstance(user, str) else None,
                            "expires": time.time() + lifetime}
    patient_label.remember(session[SESSION_KEY]["patient_ref"], patient)
    return redirect(str(pending["return_to"]), 303)


class _SessionInterface(SecureCookieSessionInterface):
    """Cookie attributes by the request's scheme, as for the CSRF cookie (see module doc).

    A request without the session cookie (every API and CDS Hooks call: the cookie's path is
    ``/ui/``) gets an empty session without building the cookie's signing serializer, and one
    whose session stayed empty, unread and unchanged returns without the seven cookie
    attributes being worked out: what Flask's interface does in both cases, at a fraction of
    the cost per request (issue 16)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and (not request.environ.get("HTTP_COOKIE")
                               or not request.cookies.get(self.get_cookie_name(app))):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not session and not session.modified and not session.accessed:
            return  # Flask's own interface would set, add or delete nothing either
        super().save_session(app, session, response)

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure

    def get_cookie_samesite(self, app: Flask) -> str:
        return "None" if request.is_secure else "Lax"

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return request.is_secure


def init_app(app: Flask) -> None:
    """The session cookie: its own key (:mod:`service.security.keys`), its name and path."""
    app.secret_key = get_keys(app).session
    app.config.update(SESSION_COOKIE_NAME="gmed_ui_session", SESSION_COOKIE_PATH="/ui/",
                      SESSION_COOKIE_HTTPONLY=True)
    app.session_interface = _SessionInterface()
