"""What one durable assessment write costs the SQL store, besides the flush (issue 16, item 3).

Writes the rows of the shipped model's answer to ``examples/runner_pfp_hip_driven.json`` (the
assessment, its ~11 KB result encoded once as the service encodes it, and its audit line) through
:class:`service.store.sql.SQLStore`, one write after the other on one thread, under each SQLite
``synchronous`` setting, and prints the CPU time (user + system, so the kernel's share of a flush
counts) and the wall time per write, plus the parts: building the rows, an empty transaction
(SQLAlchemy's connection, begin and commit), and the file identity check made before each write.
The difference between ``FULL`` and ``OFF`` is the flush; what ``OFF`` costs is everything else.

    .venv/bin/python bench/store_write.py [--writes 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cds  # noqa: E402
from service.http.jsontext import EncodedJSON, encode_object  # noqa: E402
from service.store.interface import Work  # noqa: E402
from service.store.sql import SQLStore  # noqa: E402


def _cpu_ms(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """CPU and wall milliseconds per call of ``fn``."""
    t0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    return 1000 * (time.process_time() - t0) / n, 1000 * (time.perf_counter() - w0) / n


def measure(synchronous: str, inputs: dict[str, Any], result: dict[str, Any],
            encoded: EncodedJSON, writes: int) -> None:
    """Print the CPU and wall time per write under ``synchronous`` (and the parts, for OFF)."""
    with tempfile.TemporaryDirectory(prefix="gmed-store-") as tmp:
        store = SQLStore(f"sqlite:///{tmp}/s.sqlite3", b"bench", synchronous=synchronous)

        def work() -> Work:
            return store.assessment_work(source="api", inputs=inputs, result=result,
                                         patient_ref=None, caller="bench",
                                         result_json=encoded)[1]

        def empty_transaction() -> None:
            with store.engine.begin():
                pass

        for _ in range(50):
            store.write(work())
        batches = iter([work() for _ in range(writes)])
        cpu, wall = _cpu_ms(lambda: store.write(next(batches)), writes)
        print(f"  {synchronous:<12} {cpu:>12.3f} {wall:>13.3f}")
        if synchronous == "OFF":
            parts = {"building the rows": work, "empty transaction": empty_transaction,
                     "file identity check": lambda: os.stat(f"{tmp}/s.sqlite3")}
            for name, fn in parts.items():
                print(f"    of which {name:<22} {_cpu_ms(fn, writes)[0]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=3000)
    args = parser.parse_args()
    inputs = json.loads((ROOT / "examples" / "runner_pfp_hip_driven.json").read_text())
    result = cds.assess(inputs).to_dict()
    encoded = encode_object(result)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} "
          f"cores; result {len(encoded)} bytes of JSON; {args.writes} writes each")
    print(f"  {'synchronous':<12} {'CPU ms/write':>12} {'wall ms/write':>13}")
    for synchronous in ("OFF", "NORMAL", "FULL"):
        measure(synchronous, inputs, result, encoded, args.writes)


if __name__ == "__main__":
    main()
