"""The application factory: configuration, then each concern registers itself.

``create_app(config=None)`` builds a Flask app; nothing heavy happens here. The model and the
database engine are reached lazily (``get_model()``, ``get_store()``) so that under gunicorn they
are created in each worker after the fork, never shared across processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from . import store
from .config import load_config
from .http import deadline, errors, headers, limits, logs, metrics
from .http.jsontext import FastJSONProvider
from .routes.assessments import bp as api_bp
from .routes.fhir import bp as fhir_bp
from .routes.hooks import bp as cds_hooks_bp
from .routes.openapi import bp as openapi_bp
from .routes.ops import bp as ops_bp
from .security import auth, keys, smart
from .serving import model_host
from .ui.pages import bp as ui_bp


class Service(Flask):
    """Flask, with :meth:`ensure_sync` deciding once per function whether it is a coroutine:
    Flask asks it for every hook, view and handler of every request (ten hooks here), and
    ``inspect.iscoroutinefunction`` unwraps and tests each one anew (issue 16)."""

    _SYNC_CACHE_MAX = 4096  # hooks, views and handlers are few; never grow without bound

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable: asked anew each time
            return super().ensure_sync(func)
        sync = super().ensure_sync(func)
        if len(self._sync) < self._SYNC_CACHE_MAX:
            self._sync[func] = sync
        return sync


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the service. ``config`` overrides ``GMED_*`` environment variables and defaults
    (see :mod:`service.config`)."""
    app = Service("service", instance_relative_config=True)
    app.json = FastJSONProvider(app)
    load_config(app, config)
    deadline.init_app(app)  # first before_request: the clock starts before any other work
    logs.init_app(app)  # first: its after_request runs last, once the others have set the scene
    metrics.init_app(app)
    errors.init_app(app)
    model_host.init_app(app)
    store.init_app(app)  # the store keeps the secret every key is derived from
    keys.init_app(app)  # every key, derived from the one secret, before anything needs one
    smart.init_app(app)  # the clinician page's session (its own derived key)
    auth.init_app(app)
    limits.init_app(app)  # after auth: no anonymous body is decompressed
    headers.init_app(app)
    for bp in (cds_hooks_bp, api_bp, fhir_bp, openapi_bp, ops_bp, ui_bp):
        app.register_blueprint(bp)
    return app
