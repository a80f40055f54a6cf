"""gunicorn settings for ``make serve``: loopback, one worker per core, app built once.

The app is preloaded (issue 16, target 7: a worker ready within 1 s of fork): the master imports
it, loads and verifies the model and builds the UCUM unit registry (seconds) once, in
:func:`when_ready`, before it forks; the workers share those read-only objects copy-on-write.
Measured by ``bench/startup.py``: ~3 s from fork to ready when each worker builds everything
itself (plus ~3.5 s for the UCUM registry after that), ~0.1 s preloaded. Nothing that holds a
connection, a thread or a lock is created in the master: the store's engine is created on first
use, in each worker (``post_worker_init`` pings it), and the explainer's thread pool per call.
The cost: a code change needs a restart of the master (a model change does not: an alias move is
picked up by each worker, :mod:`service.serving.model_host`). Each worker runs a few threads
(``gthread``): the CPU work is one core's, but while one request waits for the store's disk
flush the others compute, and the store commits their writes together (see
:mod:`service.store.commit`). Prometheus figures of all workers are aggregated through a
multiprocess directory created here.

Measured under load (``bench/service_targets.py --phases``, 2 workers x 4 threads, 8
connections, 2026-12-03): after :func:`gc.freeze` no full (gen-2) collection runs while serving,
and young collections pause < 1.5 ms, a few per second: the collector's thresholds stay
Python's. The slowest 2 % of assessments spend 85-95 % of their time in the store's write (the
disk flush, and the other worker's commit ahead of it on SQLite's one writer lock), not in
computing (their thread CPU is the median's) nor in the collector. One worker of 8 threads
commits more assessments per flush (one group commit for all 8 connections) but halves the
CPU for everything else, so one worker per core stays.

Environment: ``GMED_BIND`` (default 127.0.0.1:8080), ``GMED_WORKERS`` (default: the number of
cores), ``GMED_THREADS`` (default 4), plus every ``GMED_*`` setting of the app.
"""

from __future__ import annotations

import gc
import os
import tempfile
from typing import Any

bind = os.environ.get("GMED_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("GMED_WORKERS", str(os.cpu_count() or 1)))
worker_class = "gthread"
threads = int(os.environ.get("GMED_THREADS", "4"))
preload_app = True
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


def when_ready(server: Any) -> None:
    """In the master, before any fork: load and verify the model, build the UCUM registry (the
    workers inherit both). A failure is logged; each worker then retries and reports it."""
    import numpy as np

    from cds.features import MODEL_COLUMNS
    from cds.units import warm
    from service.serving.model_host import get_model

    app = server.app.wsgi()
    try:
        warm()
        with app.app_context():
            # one explanation: a model whose plan needs the compiled TreeSHAP kernel (a deep
            # site model) loads numba here, once, not in each worker's first request
            get_model().contributions(np.zeros((1, len(MODEL_COLUMNS))))
    except Exception as e:  # whatever it is, the master serves on: workers retry and report
        server.log.warning("not preloaded (%s): %s", type(e).__name__, e)
    # the preloaded objects (model, UCUM registry, contract) leave the collector's generations:
    # a full collection in a worker then walks only what requests made (the heavy hook call's
    # p99 was its gen-2 collections), and their pages stay shared (Python docs, gc.freeze)
    gc.collect()
    gc.freeze()


def post_worker_init(worker: Any) -> None:
    """Load the model (and open the store) in the fresh worker, before it takes requests; and
    answer gunicorn's own errors (a malformed request) as the app answers its errors."""
    from gunicorn import util

    from cds.errors import CdsError
    from service.http.headers import gunicorn_error
    from service.serving.model_host import get_model
    from service.store.config import ready

    util.write_error = gunicorn_error
    # built by the master already (when_ready); only if it was not, in the background
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
