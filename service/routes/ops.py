"""Operations: liveness, readiness, metrics, and a constant route for the framework ceiling.

``/healthz`` says the process answers. ``/readyz`` is 503 until a verified model is loaded (it
tries to load one, lazily) and the store answers a query; ``reasons`` says why a check failed
(the model's refusal names the artefact and the problem, never a path) and, while ready, why the
last registry alias move was refused (the previous model still serving). ``/metrics`` is Prometheus
text behind its own bearer token (``METRICS_TOKEN``, compared in constant time; a scraper cannot
mint the one-use JWTs of the API): without the token configured it is open in development and
answers 401 to everyone in production.
``/ops/ping`` returns a constant JSON body: the benchmark's baseline for what Flask and gunicorn
cost on their own.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from cds.errors import ModelUnavailable

from ..http.errors import Unauthorized
from ..http.metrics import exposition, note_model
from ..serving.model_host import host
from ..store.config import ready as store_ready

bp = Blueprint("ops", __name__)
_PING = {"status": "ok"}


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "alive"})


@bp.get("/readyz")
def readyz() -> Response:
    checks: dict[str, str] = {}
    reasons: dict[str, str] = {}
    model_host = host()
    try:
        model = model_host.get()
        checks["model"] = f"{model.id} {model.version}"
        note_model(model.id, model.version)
        if model_host.refused:
            reasons["model_reload_refused"] = model_host.refused
    except ModelUnavailable as e:
        checks["model"] = "unavailable"
        reasons["model"] = str(e)
    checks["store"] = "ok" if store_ready() else "unavailable"
    ready = "unavailable" not in checks.values()
    body: dict[str, object] = {"status": "ready" if ready else "not-ready", "checks": checks}
    if reasons:
        body["reasons"] = reasons
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    return response


def _metrics_allowed() -> bool:
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        return bool(current_app.config["ENVIRONMENT"] != "production")
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(),
                                                              str(token).encode())


@bp.get("/metrics")
def metrics() -> Response:
    if not _metrics_allowed():
        raise Unauthorized("")
    return exposition()


@bp.get("/ops/ping")
def ping() -> Response:
    return jsonify(_PING)
