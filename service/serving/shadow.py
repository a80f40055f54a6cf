"""Shadow mode: a candidate scores live traffic beside production, stored and never shown.

When the registry has a ``shadow`` alias (``cds models promote VERSION --alias shadow``), every
assessment the service makes is also scored by that version: its probability per complaint is
stored in ``shadow_assessments``, linked to the production assessment, and goes into no
response, card, page or FHIR resource (nothing reads that table but ``cds monitor``, which
compares the two models on live traffic). A red-flag request (``action: refer``) is not
shadow-scored: production runs no model there either.

:func:`shadow_assess` is the one entry point. It never fails the request: any error (shadow
model unloadable, scoring, the store) is logged and counted in ``gmed_shadow_failures_total``.
Cost: with no ``shadow`` alias the call compares a clock and returns (the registry file is
stat'ed at most every ``SHADOW_CHECK_INTERVAL`` seconds, default 5); the shadow model loads in a
background thread, and requests are shadow-scored from the moment it is loaded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import current_app

import cds
from cds.intake import rows_from_record
from cds.model import Model, models_dir
from cds.registry import alias_stamp, read_alias

from ..http.metrics import count_shadow
from ..store import get_store
from ..store.interface import Work

ALIAS = "shadow"
_EXT = "gmed.shadow"
log = logging.getLogger("service")


class ShadowHost:
    """The shadow model of one app: follows the ``shadow`` alias, loaded in the background."""

    def __init__(self, *, root: Path | None = None, interval: float = 5.0) -> None:
        self._root = root or models_dir()
        self._interval = interval
        self._checked_at = -float("inf")
        self._stamp: tuple[int, int] | None = None
        self._model: Model | None = None
        self._loading: threading.Thread | None = None

    def model(self) -> Model | None:
        """The shadow model, ``None`` when there is no alias (or it is not loaded yet)."""
        if time.monotonic() - self._checked_at >= self._interval:
            self._checked_at = time.monotonic()
            stamp = alias_stamp(self._root)
            if stamp != self._stamp and (self._loading is None or not self._loading.is_alive()):
                self._stamp = stamp
                self._follow()
        return self._model

    def _follow(self) -> None:
        version = read_alias(self._root, ALIAS)
        if version is None:
            self._model = None
        elif self._model is None or self._model.path.name != version:
            self._loading = threading.Thread(target=self._load, args=(version,),
                                             name="gmed-shadow-load", daemon=True)
            self._loading.start()

    def _load(self, version: str) -> None:
        try:
            self._model = cds.load_model(version, root=self._root)
            log.info("shadow model loaded", extra={"model_version": version})
        except Exception as e:  # the shadow is never worth a failure: production serves on
            self._model = None
            log.error("shadow model unavailable", extra={"error": type(e).__name__,
                                                         "model_version": version})

    def wait(self, timeout: float = 30.0) -> None:
        """Block until a load under way has finished (tests, warm-up)."""
        self.model()
        if self._loading is not None:
            self._loading.join(timeout)


def scores(model: Model, record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The shadow model's probability per complaint of a record (no explanation computed)."""
    complaints, rows = rows_from_record(cds.validate_record(record))
    p = model.probability(model.predict_raw(rows))
    return [{"complaint": c, "probability": round(float(q), 4)} for c, q in zip(complaints, p,
                                                                                  strict=True)]


def shadow_assess(record: Mapping[str, Any], result: Mapping[str, Any], aid: str, *,
                  work: Work | None = None) -> None:
    """Score ``record`` with the shadow model and store it against assessment ``aid``: appended
    to ``work`` (committed with the assessment) when given, else written now (the assessment
    is committed already). Never raises; nothing of it reaches the caller's answer."""
    try:
        model = host().model()
        if model is None or result.get("action") == "refer":
            return
        rows = get_store().shadow_work(aid, model.id, model.version, scores(model, record))
        if work is not None:
            work.extend(rows)
        else:
            get_store().write(rows)
        count_shadow(failed=False)
    except Exception as e:  # a shadow failure never fails the request
        log.warning("shadow scoring failed", extra={"error": type(e).__name__})
        with contextlib.suppress(Exception):  # counting must not fail the request either
            count_shadow(failed=True)


_CREATE = threading.Lock()


def host() -> ShadowHost:
    """This app's shadow host, created on first use (the app factory needs no hook for it)."""
    h: ShadowHost | None = current_app.extensions.get(_EXT)
    if h is None:
        with _CREATE:
            h = current_app.extensions.get(_EXT)
            if h is None:
                h = current_app.extensions[_EXT] = ShadowHost(
                    interval=float(current_app.config.get("SHADOW_CHECK_INTERVAL", 5.0)))
    return h
