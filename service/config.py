"""Configuration: defaults, then ``GMED_*`` environment variables, then the ``config`` argument.

Every key, with its default and meaning:

``ENVIRONMENT``           ``"production"``  ``"production"`` refuses to start (:class:`ConfigError`
                                            naming the key) with ``AUTH="off"``, with ``AUTH="jwt"``
                                            and no ``JWT_ISSUERS``, with ``UI_AUTH="off"`` or no
                                            ``SMART_CLIENT_ID``, without ``BASE_URL``, or without a
                                            ``PSEUDONYM_SECRET`` of at least 32 bytes that is not a
                                            known default;
                                            ``"development"`` allows them all (``make serve``)
``MODEL``                 ``"production"``  registry alias, version or artefact directory
``MODEL_RELOAD_INTERVAL`` ``5.0``           seconds between checks that an alias ``MODEL`` has moved
                                            (then load, verify, golden-check, swap); 0 = never
``DATABASE_URL``          ``None``          SQLAlchemy URL; ``None`` = SQLite in the instance folder;
                                            ``"memory://"`` = kept in the process only (tests);
                                            the store's keys are read by :mod:`service.store.config`
``SQLITE_SYNCHRONOUS``    ``"FULL"``        ``FULL``: a commit is on disk before the client is answered
                                            (survives power loss); ``NORMAL``: survives a crash of
                                            the service but not of the machine, several times faster
``STORE_BUSY_TIMEOUT``    ``5.0``           seconds a SQLite write waits for another writer's lock;
                                            past it (or the request deadline) the answer is 503 and
                                            nothing is stored
``PSEUDONYM_SECRET``      ``None``          the secret every key is derived from (HKDF, one label
                                            each: patient pseudonyms, the clinician session, the
                                            CSRF token; :mod:`service.security.keys`, through the store);
                                            production: at least
                                            32 bytes, e.g. ``openssl rand -hex 32``; ``None`` = a
                                            random key kept in ``<instance>/pseudonym.key`` (0600),
                                            development only
``AUTH``                  ``"jwt"``         ``"jwt"`` or ``"off"`` (development only; logged loudly)
``JWT_ISSUERS``           ``{}``            ``{iss: {"jwks_file": path} | {"jwks": {...}} |
                                            {"jku": [allowed URLs]}}``; optionally
                                            ``"fhir_servers": [base URLs]``: the SMART ``iss`` of
                                            this issuer's EHR, whose clinician sessions then see
                                            what this issuer stored (patients and API objects are
                                            scoped by issuer; see :mod:`service.security.smart`)
``JWT_LEEWAY``            ``30``            seconds of clock skew allowed on ``exp``/``iat``; a
                                            token id is remembered until ``exp`` + this
``JWT_MAX_LIFETIME``      ``3600``          longest ``exp - iat`` accepted (bounds the replay cache)
``JWKS_CACHE_SECONDS``    ``300``           lifetime of fetched keys when the JWKS response has no
                                            ``max-age`` (see :mod:`service.security.jwks`)
``JWKS_CACHE_MIN_SECONDS`` ``60``           lower and upper bounds on a response's ``max-age``
``JWKS_CACHE_MAX_SECONDS`` ``3600``
``JWKS_MIN_REFRESH_SECONDS`` ``30``         no new fetch of a ``jku`` this soon after a success (an
                                            unknown ``kid`` triggers one refresh, never a storm)
``JWKS_RETRY_SECONDS``    ``5``             no new fetch this soon after a failure (cached keys kept)
``JWKS_FETCH_TIMEOUT``    ``2.0``           deadline on a whole JWKS fetch
``JWKS_MAX_BYTES``        ``65536``         size cap on a JWKS body or file
``BASE_URL``              ``None``          public base URL (``aud``, card links, the SMART
                                            ``redirect_uri``); production requires it; ``None`` =
                                            the request's own scheme and host (development only:
                                            the ``Host`` header is the client's to choose)
``CORS_ORIGINS``          ``[]``            browser origins allowed to call (exact match)
``FHIR_SERVER_ALLOWLIST`` ``[]``            base URLs of the FHIR servers (CDS Hooks ``fhirServer``,
                                            SMART ``iss``) the service may call: same scheme, host
                                            and port, and a path under the base's, whole segments
                                            (:mod:`service.security.origins`; ``http://ehr.example/fhir``
                                            admits ``.../fhir/Patient`` but not ``.../fhirX`` nor
                                            ``http://ehr.example@evil.host``)
``OUTBOUND_PRIVATE_HOSTS`` ``[]``           host names (as written in the URL) that may resolve to
                                            loopback, private or link-local addresses; every other
                                            outbound call to such an address is refused
                                            (:mod:`service.http.httpget`). The tests and loopback EHRs
                                            of a developer machine set ``["127.0.0.1"]``
``METRICS_TOKEN``         ``None``          bearer token ``GET /metrics`` requires
                                            (``Authorization: Bearer <token>``); ``None``: in
                                            production ``/metrics`` answers 401 to everyone, in
                                            development it is open
``FHIR_TIMEOUT``          ``2.0``           seconds per prefetch query fetched from the FHIR
                                            server (all its pages together; never past the
                                            request deadline)
``MAX_CONTENT_LENGTH``    ``1 MiB``         request body cap (413 above it), also after
                                            ``Content-Encoding: gzip``/``deflate`` decompression
                                            (other encodings: 415)
``FHIR_MAX_RESOURCES``    ``1000``          FHIR resources per request, all bundles and prefetch
                                            keys together, and what is fetched for a CDS Hooks
                                            call (413 above it, naming the field); also the
                                            most items of a list or ``Bundle.entry`` of FHIR
``JSON_MAX_DEPTH``        ``64``            nesting depth of a JSON body (400 above it, rule
                                            ``maxDepth``), checked before the body is parsed
``REQUEST_DEADLINE``      ``10.0``          seconds a request may work; past it the next stage
                                            boundary answers 503 with ``Retry-After`` (see
                                            :mod:`service.http.deadline`); 0 = no deadline
``BATCH_MAX``             ``100``           records per ``POST /v1/assessments/batch``
``UI_FRAME_ANCESTORS``    ``["'self'"]``    CSP ``frame-ancestors`` of the clinician page: the EHR
                                            origins allowed to embed it (empty = ``'none'``)
``UI_AUTH``               ``"smart"``       who may open a clinician page with patient data:
                                            ``"smart"`` a SMART EHR launch for that patient (see
                                            :mod:`service.security.smart`; the EHR's ``iss`` must be on
                                            ``FHIR_SERVER_ALLOWLIST``), ``"off"`` anyone with the
                                            link (development only; ``make serve``)
``SMART_CLIENT_ID``       ``None``          this app's client id at the EHRs' authorization
                                            servers (production requires it with ``UI_AUTH="smart"``)
``SMART_SCOPES``          ``"launch openid fhirUser patient/Patient.rs"``  scopes asked for
``SMART_SESSION_SECONDS`` ``3600``          longest clinician session (shorter if the token is)
``LOG_LEVEL``             ``"INFO"``
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, request

from .security import origins
from .store.config import DEFAULTS as STORE_DEFAULTS

DEFAULTS: dict[str, Any] = {
    "ENVIRONMENT": "production",
    "MODEL": "production",
    "MODEL_RELOAD_INTERVAL": 5.0,
    **STORE_DEFAULTS,  # DATABASE_URL, SQLITE_SYNCHRONOUS, STORE_BUSY_TIMEOUT: the store's own
    "PSEUDONYM_SECRET": None,
    "AUTH": "jwt",
    "JWT_ISSUERS": {},
    "JWT_LEEWAY": 30,
    "JWT_MAX_LIFETIME": 3600,
    "JWKS_CACHE_SECONDS": 300,
    "JWKS_CACHE_MIN_SECONDS": 60,
    "JWKS_CACHE_MAX_SECONDS": 3600,
    "JWKS_MIN_REFRESH_SECONDS": 30,
    "JWKS_RETRY_SECONDS": 5,
    "JWKS_FETCH_TIMEOUT": 2.0,
    "JWKS_MAX_BYTES": 65536,
    "BASE_URL": None,
    "CORS_ORIGINS": [],
    "FHIR_SERVER_ALLOWLIST": [],
    "OUTBOUND_PRIVATE_HOSTS": [],
    "METRICS_TOKEN": None,
    "FHIR_TIMEOUT": 2.0,
    "MAX_CONTENT_LENGTH": 1 << 20,
    "FHIR_MAX_RESOURCES": 1000,
    "JSON_MAX_DEPTH": 64,
    "REQUEST_DEADLINE": 10.0,
    "BATCH_MAX": 100,
    "UI_FRAME_ANCESTORS": ["'self'"],
    "UI_AUTH": "smart",
    "SMART_CLIENT_ID": None,
    "SMART_SCOPES": "launch openid fhirUser patient/Patient.rs",
    "SMART_SESSION_SECONDS": 3600,
    "LOG_LEVEL": "INFO",
}
AUTH_MODES = ("jwt", "off")
UI_AUTH_MODES = ("smart", "off")
ENVIRONMENTS = ("production", "development")
MIN_SECRET_BYTES = 32
MIN_DISTINCT_CHARS = 8  # "x" * 32 is long but not secret; hex of random bytes has ~16
# secrets that appear in this repository's tests, benchmarks and docs, or that people type
KNOWN_SECRETS = frozenset({
    "secret", "changeme", "change-me", "change_me", "password", "default", "test", "test-secret",
    "development", "dev", "smoke", "bench", "browser-test", "pseudonym", "gmed",
    "gmed-pseudonym-secret"})


def base_url() -> str:
    """The service's public base URL: ``BASE_URL``, else (development only: production refuses
    to start without it) this request's own scheme and host."""
    configured = current_app.config["BASE_URL"]
    if configured:
        return str(configured)
    if current_app.config["ENVIRONMENT"] == "production":  # load_config refuses this; stay safe
        raise ConfigError("BASE_URL (GMED_BASE_URL) is unset in production")
    return str(request.host_url.rstrip("/"))


class ConfigError(ValueError):
    """A configuration value the service cannot start with."""


def load_config(app: Flask, config: dict[str, Any] | None) -> None:
    """Fill ``app.config``: defaults < ``GMED_*`` environment (JSON-parsed) < ``config``; then
    check it (:class:`ConfigError` naming the key)."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("GMED")
    if config:
        app.config.from_mapping(config)
    if app.config["AUTH"] not in AUTH_MODES:
        raise ConfigError(f"AUTH must be one of {AUTH_MODES}")
    if app.config["UI_AUTH"] not in UI_AUTH_MODES:
        raise ConfigError(f"UI_AUTH (GMED_UI_AUTH) must be one of {UI_AUTH_MODES}")
    if not isinstance(app.config["JWT_ISSUERS"], dict):
        raise ConfigError("JWT_ISSUERS must be a JSON object {iss: {...}}")
    for entry in app.config["JWT_ISSUERS"].values():
        servers = entry.get("fhir_servers", []) if isinstance(entry, dict) else []
        if not isinstance(servers, list) or not all(origins.parse(u) for u in servers):
            raise ConfigError("JWT_ISSUERS (GMED_JWT_ISSUERS): an issuer's fhir_servers must be "
                              "a list of http(s) base URLs")
    for key in ("CORS_ORIGINS", "FHIR_SERVER_ALLOWLIST", "OUTBOUND_PRIVATE_HOSTS"):
        if isinstance(app.config[key], str):
            app.config[key] = [s for s in app.config[key].split(",") if s]
    base = app.config["BASE_URL"]
    if base:
        if origins.parse(base) is None or "?" in str(base) or "#" in str(base):
            raise ConfigError("BASE_URL (GMED_BASE_URL) must be an http(s) URL with a host and "
                              "no user, query or fragment, e.g. https://cds.example.org")
        app.config["BASE_URL"] = str(base).rstrip("/")
    _check_limits(app.config)
    if app.config["ENVIRONMENT"] not in ENVIRONMENTS:
        raise ConfigError(f"ENVIRONMENT (GMED_ENVIRONMENT) must be one of {ENVIRONMENTS}")
    if app.config["ENVIRONMENT"] == "production":
        check_production(app.config)


def _check_limits(cfg: Mapping[str, Any]) -> None:
    for key in ("FHIR_MAX_RESOURCES", "JSON_MAX_DEPTH", "MAX_CONTENT_LENGTH"):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} (GMED_{key}) must be a positive integer")
    deadline = cfg["REQUEST_DEADLINE"]
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) or deadline < 0 \
            or deadline != deadline:
        raise ConfigError("REQUEST_DEADLINE (GMED_REQUEST_DEADLINE) must be a number of seconds "
                          ">= 0 (0 = no deadline)")


def check_production(cfg: Mapping[str, Any]) -> None:
    """Refuse what is only acceptable on a developer's machine; each message names its key."""
    dev = " (or set ENVIRONMENT=development / GMED_ENVIRONMENT=development on a developer machine)"
    if cfg["AUTH"] == "off":
        raise ConfigError("AUTH (GMED_AUTH) is off: in production every caller must present a "
                          "signed token; set AUTH=jwt and JWT_ISSUERS" + dev)
    if not cfg["JWT_ISSUERS"]:
        raise ConfigError("JWT_ISSUERS (GMED_JWT_ISSUERS) is empty with AUTH=jwt: no caller "
                          "could be verified; configure at least one issuer" + dev)
    if cfg["UI_AUTH"] == "off":
        raise ConfigError("UI_AUTH (GMED_UI_AUTH) is off: in production a clinician page with "
                          "patient data needs a SMART launch from the EHR; set UI_AUTH=smart and "
                          "SMART_CLIENT_ID" + dev)
    if not cfg["SMART_CLIENT_ID"]:
        raise ConfigError("SMART_CLIENT_ID (GMED_SMART_CLIENT_ID) is unset with UI_AUTH=smart: "
                          "register this app with the EHR and configure its client id" + dev)
    if not cfg["BASE_URL"]:
        raise ConfigError("BASE_URL (GMED_BASE_URL) is unset: in production a token's audience "
                          "is this service's own public URL, never the request's Host header; "
                          "set it, e.g. https://cds.example.org" + dev)
    secret = cfg["PSEUDONYM_SECRET"]
    if not secret:
        raise ConfigError("PSEUDONYM_SECRET (GMED_PSEUDONYM_SECRET) is unset: production needs "
                          f"a configured secret of at least {MIN_SECRET_BYTES} bytes (e.g. "
                          "`openssl rand -hex 32`), shared by every instance" + dev)
    text = str(secret)
    if text.strip().lower() in KNOWN_SECRETS or len(set(text)) < MIN_DISTINCT_CHARS:
        raise ConfigError("PSEUDONYM_SECRET (GMED_PSEUDONYM_SECRET) is a known default or "
                          "placeholder value (too few distinct characters); "
                          "generate one (e.g. `openssl rand -hex 32`)" + dev)
    if len(text.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"PSEUDONYM_SECRET (GMED_PSEUDONYM_SECRET) is shorter than "
                          f"{MIN_SECRET_BYTES} bytes; generate one (e.g. `openssl rand -hex 32`)"
                          + dev)
