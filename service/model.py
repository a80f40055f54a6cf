"""The model, reached lazily: one verified load per worker process, after gunicorn forks.

``get_model()`` loads ``MODEL`` (alias, version or directory) on first use and keeps it for the
life of the process. LightGBM predicts with ``num_threads=1`` (set in :class:`cds.Model`), so a
worker is one core and gunicorn runs one worker per core. A failed load is remembered for a few
seconds, so a broken artefact does not turn every request (or probe) into a disk scan.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Flask, current_app

import cds
from cds.errors import ModelUnavailable
from cds.model import Model

log = logging.getLogger("service")
RETRY_AFTER_S = 5.0
_EXT = "gmed.model"


class ModelHost:
    """Holds one app's model: loaded once, thread-safe, failure remembered briefly."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self._model: Model | None = None
        self._failed_at = -RETRY_AFTER_S
        self._error = ""
        self._lock = threading.Lock()

    @property
    def loaded(self) -> Model | None:
        return self._model

    def get(self) -> Model:
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is not None:
                return self._model
            if time.monotonic() - self._failed_at < RETRY_AFTER_S:
                raise ModelUnavailable(self._error)
            try:
                self._model = (self.source if isinstance(self.source, Model)
                               else cds.load_model(self.source))
            except ModelUnavailable as e:
                self._failed_at, self._error = time.monotonic(), str(e)
                log.error("model unavailable", extra={"error": type(e).__name__})
                raise
            log.info("model loaded", extra={"model_id": self._model.id,
                                            "model_version": self._model.version})
            return self._model


def init_app(app: Flask) -> None:
    """Attach a host for ``MODEL``; nothing is loaded until the first ``get_model()``."""
    app.extensions[_EXT] = ModelHost(app.config["MODEL"])


def host() -> ModelHost:
    h: ModelHost = current_app.extensions[_EXT]
    return h


def get_model() -> Model:
    """The verified model of this app (raises :class:`~cds.errors.ModelUnavailable`, 503)."""
    return host().get()
