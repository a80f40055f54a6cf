"""What the in-process benchmarks share: the app configured as ``bench/service.py`` configures
gunicorn's (auth off, SQLite ``FULL``, the shipped model), its routes as calls that check their
status, the warm-up, and a cProfile of one call instead of the figures."""

from __future__ import annotations

import cProfile
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HEADERS = {"Content-Type": "application/json"}


def bench_app(tmp: str) -> Any:
    """The service's app on a fresh store in ``tmp``."""
    os.environ.update({"GMED_SQLITE_SYNCHRONOUS": "FULL", "GMED_MODEL": "production",
                       "GMED_AUTH": "off", "GMED_ENVIRONMENT": "development",
                       "GMED_LOG_LEVEL": "WARNING",
                       "GMED_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.sqlite3'}",
                       "GMED_PSEUDONYM_SECRET": "bench", "PROMETHEUS_MULTIPROC_DIR": tmp})
    from service import create_app

    return create_app()


def post(client: Any, path: str, data: Callable[[], bytes], status: int) -> Callable[[], None]:
    """A call that posts ``data()`` to ``path`` and checks the answer's status."""
    def call() -> None:
        answer = client.post(path, data=data(), headers=HEADERS)
        assert answer.status_code == status, answer.get_data(as_text=True)
    return call


def ping(client: Any) -> Callable[[], None]:
    """A call of ``GET /ops/ping``."""
    def call() -> None:
        assert client.get("/ops/ping").status_code == 200
    return call


def warm_or_profile(calls: Sequence[Callable[[], None]], n: int, profile: Path | None,
                    what: str) -> bool:
    """200 warm-up turns of ``calls``; then, if ``profile`` is given, a cProfile (process CPU
    time) of ``n`` calls of the first written there, and True (no figures to print)."""
    for _ in range(200):
        for call in calls:
            call()
    if profile is None:
        return False
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(n):
        calls[0]()
    profiler.disable()
    profiler.dump_stats(profile)
    print(f"profile of {n} {what} written to {profile}")
    return True
