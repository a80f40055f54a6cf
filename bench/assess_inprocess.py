"""CPU per durable assessment in process: the Flask test client posting the runner example.

Builds the app as ``bench/service.py`` configures gunicorn's (auth off, SQLite ``FULL``, the
shipped model), warms up, then times ``--n`` posts of ``examples/runner_pfp_hip_driven.json``
(process CPU time, so the fsync wait does not count) and prints µs per assessment and per ping.
The assessments are timed twice, the store writing by each of its paths (the service's,
``driver``: one ``sqlite3`` connection per process; and ``sqlalchemy``, the path before it,
:mod:`service.store.sqlite_writer`), on the same database; for each, the store's share (the CPU
spent in ``Store.write``, from the thread's CPU clock: ``getrusage`` of a thread lags until
its next tick or sleep). ``--profile FILE`` writes a
cProfile of the timed loop (the service's path) instead.

    .venv/bin/python bench/assess_inprocess.py [--n 2000] [--rounds 2] [--profile out/a.prof]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inprocess import bench_app, ping, post, warm_or_profile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each store path")
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gmed-inproc-") as tmp:
        from service.store import SQLStore, get_store

        app = bench_app(tmp)
        client = app.test_client()
        with app.app_context():
            driver = get_store()
        assert isinstance(driver, SQLStore)
        in_store = [0.0]
        stores = {"driver": driver,
                  "sqlalchemy": SQLStore(driver.url, driver.secret(), driver_writes=False)}
        for store in stores.values():
            store.write = _timed(store.write, in_store)  # type: ignore[method-assign]
        record = json.dumps(json.loads(
            (ROOT / "examples" / "runner_pfp_hip_driven.json").read_text())).encode()
        assess, ping_ = post(client, "/v1/assessments", lambda: record, 201), ping(client)
        if warm_or_profile([assess, ping_], args.n, args.profile, "assessments"):
            return
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
              f"{os.cpu_count()} cores", flush=True)
        _report("ping", _measure(ping_, args.n, in_store), args.n)
        spent = {path: [0.0, 0.0, 0.0] for path in stores}
        for r in range(args.rounds):  # the paths interleaved, each first in turn
            for path in list(stores)[:: 1 if r % 2 == 0 else -1]:
                app.extensions["gmed.store"] = stores[path]
                for k, x in enumerate(_measure(assess, args.n, in_store)):
                    spent[path][k] += x / args.rounds
        for path, figures in spent.items():
            _report("assessment", figures, args.n * args.rounds, path)
        _report("ping", _measure(ping_, args.n, in_store), args.n)
        app.extensions["gmed.store"] = driver
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


def _measure(call: Callable[[], None], n: int, in_store: list[float]
             ) -> tuple[float, float, float]:
    """(user, system, in the store) µs of CPU per call of ``call``, over ``n`` calls."""
    in_store[0] = 0.0
    before = os.times()
    for _ in range(n):
        call()
    after = os.times()
    return (1e6 * (after.user - before.user) / n, 1e6 * (after.system - before.system) / n,
            1e6 * in_store[0] / n)


def _report(name: str, figures: Sequence[float], n: int, path: str = "") -> None:
    user, system, store = figures
    store_part = f"; the store {store:.0f}, by the {path} path" if path else ""
    print(f"{name:<11} {user + system:8.0f} µs CPU each (user {user:.0f}, system "
          f"{system:.0f}{store_part}; {n} in process)", flush=True)


def _timed(write: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    """``write``, adding the calling thread's CPU seconds (user and system) to ``spent[0]``."""
    def timed(*args: Any, **kwargs: Any) -> Any:
        before = time.thread_time()
        try:
            return write(*args, **kwargs)
        finally:
            spent[0] += time.thread_time() - before
    return timed


if __name__ == "__main__":
    main()
