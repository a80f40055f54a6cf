"""How many cases each fuzz run tried, written to ``out/reliability/fuzz.json``.

Hypothesis and schemathesis print nothing countable unless asked; the property tests count the
cases their bodies ran (every call, including shrinking) and record them here, so that a report
can quote the figures of the last run. Each entry is replaced by the run that wrote it last.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "out" / "reliability" / "fuzz.json"


def record_cases(name: str, cases: int, **facts: Any) -> None:
    """Store ``cases`` (and any other figures) under ``name``, merging with the other entries."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with open(REPORT.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data: dict[str, Any] = json.loads(REPORT.read_text())
        except (OSError, ValueError):
            data = {}
        data[name] = {"cases": cases, **facts,
                      "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tmp = REPORT.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(REPORT)


@contextmanager
def counted(name: str, **facts: Any) -> Iterator[Callable[[], None]]:
    """``with counted("x") as tick:`` call ``tick()`` once per case; recorded on exit (also when
    the property fails, so a failing run still says how far it got)."""
    count = [0]

    def tick() -> None:
        count[0] += 1

    try:
        yield tick
    finally:
        record_cases(name, count[0], **facts)
