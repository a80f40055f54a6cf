"""Who may call: signed JWT bearer tokens as CDS Hooks 2.0 specifies, and CORS.

Every call to ``/cds-services`` and ``/v1`` carries ``Authorization: Bearer <JWT>``:

* ``alg`` is ES384 or RS384 (never ``none``, never HMAC or anything else);
* ``iss`` is a string on the allowlist (``JWT_ISSUERS``); its keys come from a configured JWKS file or
  inline set, or from the token's ``jku`` when that URL is allowlisted for the issuer (cached,
  refreshed on an unknown ``kid`` and rate-limited: :mod:`service.security.jwks`);
* ``kid`` names a key of that set; ``aud`` is the URL of the endpoint called;
* ``exp``, ``iat`` (numbers) and ``jti`` (a string) are present, the token is current within
  ``JWT_LEEWAY`` and not longer-lived than ``JWT_MAX_LIFETIME``, and its ``jti`` was never seen
  before (kept in the store until ``exp`` plus the leeway, the last second the token would be
  accepted, so the check holds across workers and to the end of the leeway).

Any failure is a 401 with no detail (the reason is logged, never the token). ``AUTH="off"`` skips
all of it, for development only, and the service logs a warning at start. Public routes (health,
the OpenAPI document, the Questionnaire, the model card; ``/metrics`` has its own bearer token,
:mod:`service.routes.ops`) need no token. A request that is not verified here (a CORS preflight, a
public route) may not carry a ``Content-Encoding``: 415, before any byte of its body is read, so
no anonymous body is ever decompressed (:mod:`service.http.limits` decompresses after this check).

What a caller stores is scoped to its issuer (:func:`issuer`): patient pseudonyms are namespaced
by it and the API answers 404 for another issuer's assessment.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import jwt
from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import UnsupportedMediaType

from ..config import base_url
from ..http.errors import Unauthorized
from ..store import get_store
from . import jwks
from .jwks import JwksError, KeySet, get_key_cache

log = logging.getLogger("service")
ALGORITHMS = ("ES384", "RS384")
PROTECTED = ("/cds-services", "/v1/", "/fhir/RiskAssessment")  # stored results need a token
PUBLIC = ("/v1/model/card",)


def _reject(reason: str) -> Unauthorized:
    log.info("token rejected", extra={"reason": reason})
    return Unauthorized("")


def _key_set(issuer: dict[str, Any], header: dict[str, Any]) -> KeySet:
    """The issuer's key set holding the token's ``kid`` (see :mod:`service.security.jwks`)."""
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _reject("unknown kid")
    cache = get_key_cache()
    jku = header.get("jku")
    try:
        if "jwks" in issuer:
            return cache.for_inline(issuer["jwks"], kid)
        if jku is not None:
            if not isinstance(jku, str) or jku not in issuer.get("jku", []):
                raise _reject("jku not allowlisted for issuer")
            return cache.for_url(jku, kid)
        if "jwks_file" in issuer:
            return cache.for_file(str(issuer["jwks_file"]), kid)
    except JwksError as e:
        raise _reject(e.reason) from e
    raise _reject("no keys configured for issuer")


def expected_audience() -> str:
    """The URL of the endpoint being called, as the ``aud`` of its token must say."""
    return f"{base_url()}{request.path}"


def verify(token: str) -> dict[str, Any]:
    """The verified claims of ``token`` or :class:`Unauthorized` (see the module docstring)."""
    cfg = current_app.config
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        raise _reject("malformed") from e
    if header.get("alg") not in ALGORITHMS:
        raise _reject("algorithm not allowed")
    if header.get("typ", "JWT") != "JWT":
        raise _reject("typ is not JWT")
    iss = unverified.get("iss")
    if not isinstance(iss, str):
        raise _reject("iss is not a string")
    issuer = cfg["JWT_ISSUERS"].get(iss)
    if not isinstance(issuer, dict):
        raise _reject("issuer not allowed")
    keys = _key_set(issuer, header)
    try:
        key = keys.key(header["kid"], header["alg"])
        claims: dict[str, Any] = jwt.decode(
            token, key=key, algorithms=[header["alg"]], audience=expected_audience(),
            issuer=iss, leeway=int(cfg["JWT_LEEWAY"]),
            options={"require": ["iss", "aud", "exp", "iat", "jti"]})
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as e:
        raise _reject(type(e).__name__) from e
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise _reject("jti not a string")
    for name in ("exp", "iat"):  # PyJWT takes "123" (int() of it); our arithmetic would not
        if isinstance(claims[name], bool) or not isinstance(claims[name], int | float) \
                or not math.isfinite(claims[name]):
            raise _reject(f"{name} is not a number")
    now_s = int(time.time())
    leeway = int(cfg["JWT_LEEWAY"])
    if claims["exp"] - claims["iat"] > int(cfg["JWT_MAX_LIFETIME"]):
        raise _reject("token lives too long")
    if claims["iat"] > now_s + leeway:
        raise _reject("issued in the future")
    # kept while the token could still be accepted: until exp + leeway, not exp
    if not get_store().remember_token(claims["jti"], iss, math.ceil(claims["exp"]) + leeway,
                                      now_s):
        raise _reject("jti replayed")
    return claims


def issuer() -> str | None:
    """The verified token's issuer: the namespace of what this caller stores and reads
    (``None`` with auth off)."""
    claims = g.get("claims")
    return str(claims["iss"]) if claims else None


def caller() -> str:
    """Who is calling, for the audit trail: the token's issuer (and subject), or ``dev``."""
    claims = g.get("claims")
    if not claims:
        return "anonymous (auth off)"
    sub = claims.get("sub")
    return f"{claims['iss']} {sub}" if sub else str(claims["iss"])


def _authenticate() -> None:
    if current_app.config["AUTH"] == "off":
        return
    if request.method == "OPTIONS" or not request.path.startswith(PROTECTED) \
            or request.path.startswith(PUBLIC):
        if request.headers.get("Content-Encoding", "").strip().lower() not in ("", "identity"):
            log.info("anonymous compressed body refused", extra={"reason": "content-encoding"})
            raise UnsupportedMediaType("Content-Encoding is accepted only on an authenticated "
                                       "request (a bearer token)")
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _reject("no bearer token")
    g.claims = verify(token.strip())


def _cors(response: Response) -> Response:
    origin = request.headers.get("Origin")
    if origin and origin in current_app.config["CORS_ORIGINS"]:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Accept"
            response.headers["Access-Control-Max-Age"] = "600"
    return response


def init_app(app: Flask) -> None:
    """Authenticate protected routes before each request; add CORS headers after."""
    if app.config["AUTH"] == "off":
        log.warning("AUTHENTICATION IS OFF: every caller is trusted. Development only; set "
                    "GMED_AUTH=jwt and GMED_JWT_ISSUERS for any real use.")
    jwks.init_app(app)
    app.before_request(_authenticate)
    app.after_request(_cors)
