"""gunicorn settings for ``make serve``: loopback, one worker per core, app built per worker.

The app is not preloaded: each worker imports it after the fork and loads the verified model in
``post_worker_init`` (explanations run single-threaded in numpy), so no model, database engine or
thread pool is shared across processes. Each worker runs a few threads (``gthread``): the CPU
work is one core's, but while one request waits for the store's disk flush the others compute,
and the store commits their writes together (see :mod:`service.store.commit`). Prometheus figures of
all workers are aggregated through a multiprocess directory created here.

Environment: ``GMED_BIND`` (default 127.0.0.1:8080), ``GMED_WORKERS`` (default: the number of
cores), ``GMED_THREADS`` (default 4), plus every ``GMED_*`` setting of the app.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

bind = os.environ.get("GMED_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("GMED_WORKERS", str(os.cpu_count() or 1)))
worker_class = "gthread"
threads = int(os.environ.get("GMED_THREADS", "4"))
preload_app = False
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None  # the app writes its own JSON access lines, without query strings or ids
errorlog = "-"
loglevel = os.environ.get("GMED_LOG_LEVEL", "info").lower()
# threads of numerical libraries: one per worker, as many workers as cores
raw_env = ["OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1"]
for _setting in raw_env:
    _key, _value = _setting.split("=")
    os.environ.setdefault(_key, _value)

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gmed-metrics-")


def post_worker_init(worker: Any) -> None:
    """Load the model (and open the store) in the fresh worker, before it takes requests; and
    answer gunicorn's own errors (a malformed request) as the app answers its errors."""
    from gunicorn import util

    from cds.errors import CdsError
    from service.headers import gunicorn_error
    from service.model import get_model
    from service.store.config import ready

    util.write_error = gunicorn_error
    # the UCUM registry takes seconds to build: in the background, before a unit needs it
    import threading

    from cds.units import warm
    threading.Thread(target=warm, name="ucum-warm", daemon=True).start()

    app = worker.wsgi
    try:
        with app.app_context():
            model = get_model()
            store_ok = ready(app)
    except CdsError as e:  # /readyz reports it too; requests answer 503
        worker.log.warning("worker %s not ready: %s", worker.pid, e)
        return
    if store_ok:
        worker.log.info("worker %s ready: %s %s", worker.pid, model.id, model.version)
    else:
        worker.log.warning("worker %s not ready: the store does not answer", worker.pid)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
