"""The model, reached lazily: one verified load per worker process, after gunicorn forks.

``get_model()`` loads ``MODEL`` (alias, version or directory) on first use. When ``MODEL`` is a
registry alias, the host notices an alias change without a restart: at most every
``MODEL_RELOAD_INTERVAL`` seconds it compares the registry file's stamp; when the alias has
moved, one thread loads the new version beside the old one (manifest verified first), checks it
on the golden records (:mod:`cds.golden`), and only then swaps the reference, a single
assignment. That work runs in a background thread: requests keep being answered by the old
model meanwhile, and if anything fails the
old model stays in service (the failed registry state is not retried until it changes again).

Explanations and predictions run single-threaded in numpy (:mod:`cds.treeshap`; no LightGBM at
serving), so a worker is one core and gunicorn runs one worker per core. A failed first load is
remembered for a few seconds, so a broken artefact does not turn every request (or probe) into a
disk scan.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app

import cds
from cds.errors import ModelUnavailable
from cds.golden import check_model
from cds.model import MODEL_ID, Model, models_dir
from cds.registry import alias_stamp, read_alias

log = logging.getLogger("service")
RETRY_AFTER_S = 5.0
_EXT = "gmed.model"


class ModelHost:
    """Holds one app's model: loaded once, thread-safe, failure remembered briefly, and
    reloaded when its registry alias moves."""

    def __init__(self, source: Any, *, reload_interval: float = 0.0,
                 root: Path | None = None) -> None:
        self.source = source
        self._model: Model | None = None
        self._failed_at = -RETRY_AFTER_S
        self._error = ""
        self._error_type: type[ModelUnavailable] = ModelUnavailable
        self._lock = threading.Lock()
        self._root = root or models_dir()
        # An alias is a name that is neither a directory nor a version; it may be unset yet.
        self._alias = (source if isinstance(source, str) and reload_interval > 0
                       and not Path(source).is_dir()
                       and not (self._root / MODEL_ID / source).is_dir()
                       else None)
        self._interval = reload_interval
        self._checked_at = time.monotonic()
        self._stamp = alias_stamp(self._root)
        self._reloading = threading.Lock()
        self.refused = ""  # why the last alias move was refused ("" when none was)

    @property
    def loaded(self) -> Model | None:
        return self._model

    def get(self) -> Model:
        model = self._model
        if model is not None:
            if (self._alias is not None and time.monotonic() - self._checked_at >= self._interval
                    and not self._reloading.locked()):
                self._checked_at = time.monotonic()
                threading.Thread(target=self._maybe_reload, name="gmed-model-reload",
                                 daemon=True).start()
            return model
        with self._lock:
            if self._model is not None:
                return self._model
            if time.monotonic() - self._failed_at < RETRY_AFTER_S:
                raise self._error_type(self._error)  # same class: same code for clients
            try:
                self._model = (self.source if isinstance(self.source, Model)
                               else cds.load_model(self.source, root=self._root))
            except ModelUnavailable as e:
                self._failed_at, self._error, self._error_type = time.monotonic(), str(e), type(e)
                log.error("model unavailable", extra={"error": type(e).__name__})
                raise
            log.info("model loaded", extra={"model_id": self._model.id,
                                            "model_version": self._model.version})
            return self._model

    def _maybe_reload(self) -> None:
        """If the alias moved, load, check and swap; one thread at a time, others serve on."""
        if not self._reloading.acquire(blocking=False):
            return
        try:
            stamp = alias_stamp(self._root)
            if stamp == self._stamp or self._alias is None:
                return
            self._stamp = stamp  # a failure is not retried until the registry changes again
            current = self._model
            version = read_alias(self._root, self._alias)
            if version is None or (current is not None and current.path.name == version):
                return
            try:
                candidate = cds.load_model(version, root=self._root)
                problems = check_model(candidate)
            except Exception as e:  # anything at all: the current model stays in service
                self.refused = f"{version}: {e}" if isinstance(e, ModelUnavailable) else (
                    f"{version}: {type(e).__name__}")
                log.error("model reload refused; the current model stays in service",
                          extra={"error": type(e).__name__, "model_version": version})
                return
            if problems:
                self.refused = f"{version}: {len(problems)} golden record(s) failed"
                log.error("model reload refused: golden records failed; the current model stays "
                          "in service", extra={"count": len(problems), "model_version": version,
                                               "reason": "golden"})
                return
            self._model = candidate  # one assignment: requests see the old or the new model
            self.refused = ""
            log.info("model reloaded", extra={"model_id": candidate.id,
                                              "model_version": candidate.version})
        finally:
            self._reloading.release()


def init_app(app: Flask) -> None:
    """Attach a host for ``MODEL``; nothing is loaded until the first ``get_model()``."""
    app.extensions[_EXT] = ModelHost(app.config["MODEL"],
                                     reload_interval=float(app.config["MODEL_RELOAD_INTERVAL"]))


def host() -> ModelHost:
    h: ModelHost = current_app.extensions[_EXT]
    return h


def get_model() -> Model:
    """The verified model of this app (raises :class:`~cds.errors.ModelUnavailable`, 503)."""
    return host().get()
