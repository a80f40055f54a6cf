"""Structured JSON logs with no patient data and no tokens.

One line per request (method, route template, status, duration, request id) and one per notable
event. Only whitelisted fields are written: a log call cannot leak a record, a value, a patient
reference or a bearer token by passing it in ``extra``; paths are logged as route templates
(``/v1/assessments/<aid>``) so ids in URLs stay out too.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

SAFE_FIELDS = ("route", "method", "status", "duration_ms", "request_id", "error", "code",
               "reason", "model_id", "model_version", "workers", "auth", "count")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...safe extras}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                  + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.msg
            if isinstance(record.msg, str) else type(record.msg).__name__,
        }
        for key in SAFE_FIELDS:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__  # the type only: messages may hold data
        return json.dumps(out, default=str)


def configure(level: str) -> None:
    """Send the ``service`` loggers to stderr as JSON (one handler, however many apps)."""
    logger = logging.getLogger("service")
    logger.handlers = [h for h in logger.handlers if not getattr(h, "gmed_stderr", False)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.gmed_stderr = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)


log = logging.getLogger("service.access")


def _request_id() -> None:
    incoming = request.headers.get("X-Request-Id", "")
    # an incoming id is echoed only if it looks like one of ours: no free text reaches the logs
    g.request_id = incoming if _is_uuid(incoming) else str(uuid.uuid4())


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _access(response: Response) -> Response:
    rule = request.url_rule
    log.info("request", extra={"route": rule.rule if rule else "<unmatched>",
                               "method": request.method, "status": response.status_code,
                               "duration_ms": g.get("elapsed_ms"),
                               "request_id": g.get("request_id")})
    response.headers["X-Request-Id"] = g.get("request_id", "")
    return response


def init_app(app: Flask) -> None:
    configure(str(app.config["LOG_LEVEL"]).upper())  # gunicorn takes "info", logging "INFO"
    app.before_request(_request_id)
    app.after_request(_access)
