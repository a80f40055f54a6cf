"""Prometheus metrics: requests and latency per route, errors, predictions by band, model
version, shadow scoring, and the model-monitoring gauges (``gmed_monitor_*``).

Each app owns a registry (so tests can build many apps). Under gunicorn, ``gunicorn_conf.py``
sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts; ``/metrics`` then aggregates every
worker's figures with prometheus_client's multiprocess collector. Labels are route templates
(``/cds-services/<service_id>``), never raw paths, so their number stays bounded.

Monitoring (issue #13): the figures ``cds monitor`` computes (:mod:`cds.monitoring`: PSI per input
against the training distribution shipped with the model, out-of-population rate, prediction
distribution, observed vs expected and the calibration alarm), over the assessments of the
last ``MONITOR_WINDOW_DAYS`` days (default 30; at most ``MONITOR_MAX_ROWS``, default 5,000, the
newest), rescored by the serving model. Computed on scrape, at most every
``MONITOR_CACHE_SECONDS`` (default 300) per process, the last figures served in between: never on
an assessment's path, and a scrape costs one bounded query and one vectorised scoring at most.
A failure there keeps the last figures (logged); ``/metrics`` still answers.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
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
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cds.assessment import Assessment
from cds.monitoring import CALIBRATION_ALARM_PP, PSI_ALARM, PSI_MODERATE

_EXT = "gmed.metrics"
log = logging.getLogger("service")
MONITOR_DEFAULTS = {"MONITOR_WINDOW_DAYS": 30.0, "MONITOR_MAX_ROWS": 5000,
                    "MONITOR_CACHE_SECONDS": 300.0}
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
        self.shadow = Counter("gmed_shadow_scored_total", "Assessments also scored by the "
                              "shadow model (stored, never shown)", registry=self.registry)
        self.shadow_failures = Counter("gmed_shadow_failures_total", "Shadow scorings that "
                                       "failed (the request was answered all the same)",
                                       registry=self.registry)
        self.monitor = MonitorCache()
        # labelled children, looked up once per label set: ``labels()`` validates and locks
        self._by_request: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._children: dict[tuple[Any, str, str], Any] = {}

    def child(self, metric: Any, first: str, second: str) -> Any:
        """``metric.labels(first, second)``, looked up once per label pair (bounded: complaints
        and bands, model versions)."""
        key = (metric, first, second)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(first, second)
        return found

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


def count_prediction(assessment: Assessment) -> None:
    """Count one assessment's estimates by complaint and band."""
    m: Metrics = current_app.extensions[_EXT]
    if assessment.action == "refer":  # no estimate, hence no complaint to count it under
        m.child(m.predictions, "any", "refer").inc()
        return
    for r in assessment.results:
        m.child(m.predictions, r.complaint, r.band).inc()
    model = assessment.model
    m.child(m.model, model["id"], model["version"]).set(1)


def exposition() -> Response:
    """The Prometheus text exposition of this process, or of every gunicorn worker."""
    m: Metrics = current_app.extensions[_EXT]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(m.registry)
    monitored = CollectorRegistry()
    monitored.register(_Families(m.monitor.families()))
    body += generate_latest(monitored)
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})


def note_model(model_id: str, version: str) -> None:
    m: Metrics = current_app.extensions[_EXT]
    m.model.labels(model_id, version).set(1)


def init_app(app: Flask) -> None:
    app.extensions[_EXT] = Metrics()
    app.before_request(_start)
    app.after_request(_finish)


def count_shadow(*, failed: bool) -> None:
    """Count one shadow scoring, or one failed shadow scoring."""
    m: Metrics = current_app.extensions[_EXT]
    (m.shadow_failures if failed else m.shadow).inc()


def _config(key: str) -> float:
    return float(current_app.config.get(key, MONITOR_DEFAULTS[key]))


def monitor_figures() -> dict[str, Any]:
    """:func:`cds.monitoring.figures` over the store's recent assessments, rescored by the serving
    model (red flags, and records the contract no longer accepts, left out)."""
    import numpy as np

    from cds.errors import CdsError
    from cds.features import ROWS
    from cds.monitoring import figures, read_reference, rows_from_records
    from cds.validate import validate_record

    from ..serving.model_host import get_model
    from ..store import get_store

    model = get_model()
    since = datetime.now(UTC) - timedelta(days=_config("MONITOR_WINDOW_DAYS"))
    found = get_store().recent_assessments(since, int(_config("MONITOR_MAX_ROWS")))
    records, labels = [], []
    for a in found:
        if a["action"] == "refer":
            continue
        inputs = a["inputs"] if isinstance(a["inputs"], Mapping) else json.loads(a["inputs"])
        try:
            records.append(validate_record(inputs))
        except CdsError:
            continue
        labels += [float("nan") if a["outcomes"].get(c) is None else float(a["outcomes"][c])
                   for c in records[-1][ROWS.name]]
    out: dict[str, Any] = {"model": model.version, "assessments": len(found)}
    if not labels:
        return {**out, "rows": 0}
    _, X = rows_from_records(records)
    p = model.probability(model.predict_raw(X))
    return {**out, **figures(X, p, np.asarray(labels, dtype=float),
                             reference=read_reference(model.path),
                             population=model.metadata.get("population") or {})}


def _gauge(name: str, doc: str, value: float | None, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels))
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        family.add_metric(list(labels.values()), value)
    return family


def monitor_families(f: Mapping[str, Any]) -> list[Metric]:
    """The ``gmed_monitor_*`` gauges of :func:`monitor_figures`; HELP names each bound."""
    window = (f"assessments of the last {_config('MONITOR_WINDOW_DAYS'):g} days (at most "
              f"{int(_config('MONITOR_MAX_ROWS'))}, red flags excluded), model {f['model']}")
    out: list[Metric] = [
        _gauge("gmed_monitor_rows", f"Complaint rows scored for monitoring: {window}",
               f["rows"]),
        _gauge("gmed_monitor_computed_timestamp_seconds",
               "When the monitoring figures were computed (Unix time)", time.time())]
    if not f["rows"]:
        return out
    psi = GaugeMetricFamily(
        "gmed_monitor_psi", f"Population stability index of each model input against the "
        f"training distribution shipped with the model (reference.json), {window}; below "
        f"{PSI_MODERATE} stable, {PSI_MODERATE}-{PSI_ALARM} moderate shift, above {PSI_ALARM} "
        "major shift (alarm) (Siddiqi 2006; Yurdakul & Naranjo 2020)", labels=["feature"])
    for feature, value in f["psi"].items():
        psi.add_metric([feature], value)
    quantiles = GaugeMetricFamily("gmed_monitor_prediction_quantile", "Quartiles of the "
                                  f"calibrated probability, {window}", labels=["quantile"])
    for q, value in zip(("0.25", "0.5", "0.75"), f["prediction"]["quartiles"], strict=True):
        quantiles.add_metric([q], value)
    ci = f["observed_ci95"] or [None, None]
    out += [
        psi,
        _gauge("gmed_monitor_psi_alarms", f"Model inputs whose PSI exceeds {PSI_ALARM} "
               "(major shift)", len(f["psi_alarms"])),
        _gauge("gmed_monitor_out_of_population_ratio", "Share of rows with a value outside the "
               f"training population (the model's metadata population ranges), {window}",
               f["out_of_population_rate"]),
        _gauge("gmed_monitor_prediction_mean", f"Mean calibrated probability, {window}",
               f["prediction"]["mean"]),
        quantiles,
        _gauge("gmed_monitor_outcomes", f"Rows with a recorded outcome, {window}",
               f["outcomes"]),
        _gauge("gmed_monitor_observed_ratio", "Observed outcome rate (hip driver confirmed) "
               "among rows with an outcome", f["observed"]),
        _gauge("gmed_monitor_observed_ratio_ci95_lower", "Wilson 95% CI of the observed rate, "
               "lower bound", ci[0]),
        _gauge("gmed_monitor_observed_ratio_ci95_upper", "Wilson 95% CI of the observed rate, "
               "upper bound", ci[1]),
        _gauge("gmed_monitor_expected_ratio", "Mean predicted probability among rows with an "
               "outcome", f["expected"]),
        _gauge("gmed_monitor_calibration_alarm", "1 when the expected rate lies outside the "
               f"observed rate's Wilson 95% CI and more than {CALIBRATION_ALARM_PP} percentage "
               "points from it (calibration drift), else 0", float(f["calibration_alarm"]))]
    return out


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families

    def describe(self) -> Iterable[Metric]:
        return []


class MonitorCache:
    """The monitoring gauges of one process, recomputed at most every ``MONITOR_CACHE_SECONDS``
    (one scrape at a time computes; the others serve the last figures)."""

    def __init__(self) -> None:
        self._at = -math.inf
        self._families: list[Metric] = []
        self._lock = threading.Lock()

    def families(self) -> list[Metric]:
        if time.monotonic() - self._at >= _config("MONITOR_CACHE_SECONDS") \
                and self._lock.acquire(blocking=False):
            try:
                self._families = monitor_families(monitor_figures())
            except Exception as e:  # the store or model down: /metrics still answers
                log.warning("monitoring figures not computed", extra={"error": type(e).__name__})
            finally:
                self._at = time.monotonic()
                self._lock.release()
        return self._families
