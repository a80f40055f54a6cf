"""Structured JSON logs with no patient data and no tokens.

One line per request (method, route template, status, duration, request id) and one per notable
event. Only whitelisted fields are written: a log call cannot leak a record, a value, a patient
reference or a bearer token by passing it in ``extra``; paths are logged as route templates
(``/v1/assessments/<aid>``) so ids in URLs stay out too.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

SAFE_FIELDS = ("route", "method", "status", "duration_ms", "request_id", "error", "code",
               "reason", "model_id", "model_version", "workers", "auth", "count")


_ENCODER = json.JSONEncoder(default=str)  # the text json.dumps(out, default=str) gives


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...safe extras}`` on one line (a value JSON cannot
    hold is written as its ``str``). One encoder serves every line (``json.dumps(default=...)``
    would build one per line), and the timestamp's seconds are formatted once per second."""

    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second[0]:
            self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        fields = record.__dict__
        out: dict[str, Any] = {
            "ts": f"{self._second[1]}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.msg
            if isinstance(record.msg, str) else type(record.msg).__name__,
        }
        for key in SAFE_FIELDS:
            if key in fields:
                out[key] = fields[key]
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__  # the type only: messages may hold data
        return _ENCODER.encode(out)


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


class _RequestIds:
    """Request ids in UUID (version 4) form: a random start per process, drawn again after a
    fork, then a counter. Unique across workers (by the ~90 random bits of the start) and
    cheaper than a ``uuid4`` each (no system call, no ``UUID`` object): they correlate log
    lines, they are no secret."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        r = uuid.uuid4().hex
        self._prefix = f"{r[:8]}-{r[8:12]}-4{r[13:16]}-{'89ab'[int(r[16], 16) & 3]}{r[17:20]}-"
        self._counter = itertools.count(int(r[20:24], 16) << 32)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


_ids = _RequestIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.reset)


def _request_id() -> None:
    incoming = request.environ.get("HTTP_X_REQUEST_ID")
    # an incoming id is echoed only if it looks like one of ours: no free text reaches the logs
    g.request_id = incoming if incoming and _is_uuid(incoming) else _ids.next()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _access(response: Response) -> Response:
    request_id = g.get("request_id", "")
    if log.isEnabledFor(logging.INFO):
        rule = request.url_rule
        # log.info's record without its walk up the stack for the caller (a third of the line's
        # cost, every request): the JSON line holds no source location, and this is the caller
        log.handle(log.makeRecord(
            log.name, logging.INFO, __file__, 0, "request", (), None, func="_access",
            extra={"route": rule.rule if rule else "<unmatched>", "method": request.method,
                   "status": response.status_code, "duration_ms": g.get("elapsed_ms"),
                   "request_id": request_id}))
    response.headers["X-Request-Id"] = request_id
    return response


def init_app(app: Flask) -> None:
    configure(str(app.config["LOG_LEVEL"]).upper())  # gunicorn takes "info", logging "INFO"
    app.before_request(_request_id)
    app.after_request(_access)
