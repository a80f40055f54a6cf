"""Prometheus metrics: requests and latency per route, errors, predictions by band, model version.

Each app owns a registry (so tests can build many apps). Under gunicorn, ``gunicorn_conf.py``
sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts; ``/metrics`` then aggregates every
worker's figures with prometheus_client's multiprocess collector. Labels are route templates
(``/cds-services/<service_id>``), never raw paths, so their number stays bounded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_EXT = "gmed.metrics"
# the method label: a method outside these is counted as "OTHER", so that a client inventing
# methods cannot create series without bound (gunicorn passes any 3-20 upper-case letters)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The app's metric families."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("gmed_http_requests_total", "HTTP requests",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("gmed_http_request_duration_seconds", "Request latency",
                                 ["route"], buckets=BUCKETS, registry=self.registry)
        self.errors = Counter("gmed_http_errors_total", "Error responses (4xx and 5xx)",
                              ["route", "status"], registry=self.registry)
        self.predictions = Counter("gmed_predictions_total", "Complaint estimates by band "
                                   "(red-flag referrals as band 'refer')",
                                   ["complaint", "band"], registry=self.registry)
        self.model = Gauge("gmed_model_info", "The loaded model (value 1)",
                           ["model_id", "version"], registry=self.registry,
                           multiprocess_mode="liveall")
        # labelled children, looked up once per label set: ``labels()`` validates and locks
        self._by_request: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def request_children(self, route: str, method: str, status: int) -> tuple[Any, Any, Any]:
        """The request counter, latency histogram and error counter (``None`` below 400) of
        one route, method and status (a method outside :data:`METHODS` counts as ``OTHER``).
        Bounded: routes are templates, statuses and methods few."""
        method = method if method in METHODS else "OTHER"
        key = (route, method, status)
        children = self._by_request.get(key)
        if children is None:
            code = str(status)
            children = (self.requests.labels(route, method, code), self.latency.labels(route),
                        self.errors.labels(route, code) if status >= 400 else None)
            self._by_request[key] = children
        return children


def _route() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


def _start() -> None:
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    m: Metrics = current_app.extensions[_EXT]
    now = time.perf_counter()
    elapsed = now - g.get("started", now)
    count, latency, error = m.request_children(_route(), request.method, response.status_code)
    count.inc()
    latency.observe(elapsed)
    if error is not None:
        error.inc()
    g.elapsed_ms = round(elapsed * 1000, 3)
    return response


def count_prediction(result: Mapping[str, Any]) -> None:
    """Count one assessment's estimates by complaint and band."""
    m: Metrics = current_app.extensions[_EXT]
    if result["action"] == "refer":  # no estimate, hence no complaint to count it under
        m.predictions.labels("any", "refer").inc()
        return
    for r in result["results"]:
        m.predictions.labels(r["complaint"], r["band"]).inc()
    model = result["model"]
    m.model.labels(model["id"], model["version"]).set(1)


def exposition() -> Response:
    """The Prometheus text exposition of this process, or of every gunicorn worker."""
    m: Metrics = current_app.extensions[_EXT]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(m.registry)
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})


def note_model(model_id: str, version: str) -> None:
    m: Metrics = current_app.extensions[_EXT]
    m.model.labels(model_id, version).set(1)


def init_app(app: Flask) -> None:
    app.extensions[_EXT] = Metrics()
    app.before_request(_start)
    app.after_request(_finish)
