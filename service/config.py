"""Configuration: defaults, then ``GMED_*`` environment variables, then the ``config`` argument.

Every key, with its default and meaning:

``MODEL``                 ``"production"``  registry alias, version or artefact directory
``MODEL_RELOAD_INTERVAL`` ``5.0``           seconds between checks that an alias ``MODEL`` has moved
                                            (then load, verify, golden-check, swap); 0 = never
``DATABASE_URL``          ``None``          SQLAlchemy URL; ``None`` = SQLite in the instance folder
``SQLITE_SYNCHRONOUS``    ``"FULL"``        ``FULL``: a commit is on disk before the client is answered
                                            (survives power loss); ``NORMAL``: survives a crash of
                                            the service but not of the machine, several times faster
``PSEUDONYM_SECRET``      ``None``          HMAC key for patient references; ``None`` = a random
                                            key kept in ``<instance>/pseudonym.key`` (0600)
``AUTH``                  ``"jwt"``         ``"jwt"`` or ``"off"`` (development only; logged loudly)
``JWT_ISSUERS``           ``{}``            ``{iss: {"jwks_file": path} | {"jwks": {...}} |
                                            {"jku": [allowed URLs]}}``
``JWT_LEEWAY``            ``30``            seconds of clock skew allowed on ``exp``/``iat``
``JWT_MAX_LIFETIME``      ``3600``          longest ``exp - iat`` accepted (bounds the replay cache)
``BASE_URL``              ``None``          public base URL (``aud`` and card links); ``None`` = the
                                            request's own scheme and host
``CORS_ORIGINS``          ``[]``            browser origins allowed to call (exact match)
``FHIR_SERVER_ALLOWLIST`` ``[]``            ``fhirServer`` URL prefixes the service may fetch from
``FHIR_TIMEOUT``          ``2.0``           seconds per FHIR request when fetching what was not
                                            prefetched
``MAX_CONTENT_LENGTH``    ``1 MiB``         request body cap (413 above it)
``BATCH_MAX``             ``100``           records per ``POST /v1/assessments/batch``
``UI_FRAME_ANCESTORS``    ``["'self'"]``    CSP ``frame-ancestors`` of the clinician page: the EHR
                                            origins allowed to embed it (empty = ``'none'``)
``LOG_LEVEL``             ``"INFO"``
"""

from __future__ import annotations

from typing import Any

from flask import Flask

DEFAULTS: dict[str, Any] = {
    "MODEL": "production",
    "MODEL_RELOAD_INTERVAL": 5.0,
    "DATABASE_URL": None,
    "SQLITE_SYNCHRONOUS": "FULL",
    "PSEUDONYM_SECRET": None,
    "AUTH": "jwt",
    "JWT_ISSUERS": {},
    "JWT_LEEWAY": 30,
    "JWT_MAX_LIFETIME": 3600,
    "BASE_URL": None,
    "CORS_ORIGINS": [],
    "FHIR_SERVER_ALLOWLIST": [],
    "FHIR_TIMEOUT": 2.0,
    "MAX_CONTENT_LENGTH": 1 << 20,
    "BATCH_MAX": 100,
    "UI_FRAME_ANCESTORS": ["'self'"],
    "LOG_LEVEL": "INFO",
}
AUTH_MODES = ("jwt", "off")


class ConfigError(ValueError):
    """A configuration value the service cannot start with."""


def load_config(app: Flask, config: dict[str, Any] | None) -> None:
    """Fill ``app.config``: defaults < ``GMED_*`` environment (JSON-parsed) < ``config``."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("GMED")
    if config:
        app.config.from_mapping(config)
    if app.config["AUTH"] not in AUTH_MODES:
        raise ConfigError(f"AUTH must be one of {AUTH_MODES}")
    if not isinstance(app.config["JWT_ISSUERS"], dict):
        raise ConfigError("JWT_ISSUERS must be a JSON object {iss: {...}}")
    for key in ("CORS_ORIGINS", "FHIR_SERVER_ALLOWLIST"):
        if isinstance(app.config[key], str):
            app.config[key] = [s for s in app.config[key].split(",") if s]
    base = app.config["BASE_URL"]
    if base:
        app.config["BASE_URL"] = str(base).rstrip("/")
