"""Worker readiness after fork (issue 16, target 7: ready within 1 s, model verified and loaded,
store reachable), with a breakdown, for the two ways a gunicorn master can start its workers.

    .venv/bin/python bench/startup.py [--repeats 3] [--model production]

* ``built after fork`` (``preload_app = False``): the master holds nothing; each worker imports
  the service, builds the app, loads and verifies the model, opens the store, and builds the
  UCUM unit registry (today in a background thread, competing with the first requests);
* ``preloaded`` (``preload_app = True``, :func:`service.gunicorn_conf.when_ready`): the master
  imports the service, builds the app, loads and verifies the model and builds the UCUM
  registry once; each worker, after fork, only opens its own store connection.

The worker is a real ``os.fork`` of this process, as gunicorn's; each step is timed in the child
and the median over the repeats printed, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _timed(steps: dict[str, float], name: str, work: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    result = work()
    steps[name] = time.perf_counter() - t0
    return result


def _master(config: dict[str, Any]) -> tuple[Any, dict[str, float]]:
    """What a preloading master does before it forks (see gunicorn_conf.when_ready)."""
    steps: dict[str, float] = {}
    create_app = _timed(steps, "import service", lambda: __import__(
        "service.app", fromlist=["create_app"]).create_app)
    app = _timed(steps, "create_app", lambda: create_app(config))
    from service.serving.model_host import get_model

    with app.app_context():
        _timed(steps, "model: load + verify", get_model)
    from cds.units import warm

    _timed(steps, "UCUM registry", warm)
    return app, steps


def _worker(app: Any, config: dict[str, Any]) -> dict[str, float]:
    """What a worker does after fork before it is ready (post_worker_init)."""
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    if app is None:
        create_app = _timed(steps, "import service", lambda: __import__(
            "service.app", fromlist=["create_app"]).create_app)
        app = _timed(steps, "create_app", lambda: create_app(config))
    from service.serving.model_host import get_model
    from service.store import get_store

    with app.app_context():
        _timed(steps, "model: load + verify", get_model)
        ok = _timed(steps, "store: connect + ping", lambda: get_store().ping())
    steps["READY"] = time.perf_counter() - t0
    if not ok:
        raise SystemExit("the store does not answer")
    from cds.units import warm

    _timed(steps, "UCUM registry (after ready)", warm)
    return steps


def _fork(run: Callable[[], dict[str, float]]) -> dict[str, float]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(read)
        try:
            payload = json.dumps(run()).encode()
        except BaseException as e:  # report, never fall back into the parent's code
            payload = json.dumps({"error": repr(e)}).encode()
        os.write(write, payload)
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    result: dict[str, float] = json.loads(b"".join(chunks))
    if "error" in result:
        raise SystemExit(f"worker failed: {result['error']}")
    return result


def _print(title: str, runs: list[dict[str, float]]) -> None:
    print(f"  {title}:")
    for step in runs[0]:
        values = [r[step] for r in runs]
        print(f"    {step:<30} {statistics.median(values) * 1000:8.0f} ms"
              + ("   <- time from fork to ready" if step == "READY" else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="production")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gmed-startup-"))
    config = {"MODEL": args.model, "ENVIRONMENT": "development",
              "DATABASE_URL": f"sqlite:///{tmp / 'store.sqlite3'}"}
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(tmp))
    here = Path(__file__).resolve().parent  # bench/service.py would shadow the service package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    if "service" in sys.modules or "cds.units" in sys.modules:
        raise SystemExit("run in a fresh interpreter")
    cold = [_fork(lambda: _worker(None, config)) for _ in range(args.repeats)]
    app, master = _master(config)
    warm = [_fork(lambda: _worker(app, config)) for _ in range(args.repeats)]
    load = os.getloadavg()
    print(f"worker readiness after fork, median of {args.repeats}; load average {load[0]:.2f} "
          f"on {os.cpu_count()} cores (target: READY <= 1000 ms)")
    _print("built after fork (preload_app = False)", cold)
    _print("master, once, before forking (preload_app = True)", [master])
    _print("preloaded (preload_app = True)", warm)


if __name__ == "__main__":
    main()
