"""What one durable assessment write costs the SQL store, by write path (issue 16, item 3).

Writes the rows of the shipped model's answer to ``examples/runner_pfp_hip_driven.json`` (the
assessment, its ~11 KB result encoded once as the service encodes it, and its audit line) through
:class:`service.store.sql.SQLStore` on a SQLite file, by each write path: ``sqlalchemy`` (the
group commit on SQLAlchemy's engine: pool, transaction, ``Connection.execute``) and ``driver``
(the group commit on one ``sqlite3`` connection per process, :mod:`service.store.sqlite_writer`,
the service's way), from 1 and from 4 threads (the group commit then shares a flush between the
writes queued together), under each ``synchronous`` setting asked for. Prints the CPU per write
(user and system, from ``os.times``: the kernel's share of a flush counts, the wait for the disk
does not), the wall time per write and the writes per commit; each figure is the median of
``--rounds`` rounds, the ways interleaved so that the machine's load falls on both alike. The
difference between ``FULL`` and ``OFF`` is the flush; what ``OFF`` costs is everything else.
Then the parts of a write outside the database: building the rows, and converting them to the
driver's parameters.

    .venv/bin/python bench/store_write.py [--writes 2000] [--rounds 3] [--synchronous OFF FULL]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cds  # noqa: E402
from service.http.jsontext import EncodedJSON, encode_object  # noqa: E402
from service.store.commit import GroupCommit  # noqa: E402
from service.store.interface import Work  # noqa: E402
from service.store.sql import SQLStore  # noqa: E402
from service.store.sqlite_writer import INSERTS  # noqa: E402

WAYS = {"sqlalchemy": False, "driver": True}


class Example:
    """The rows of one assessment, as the service builds them."""

    def __init__(self) -> None:
        self.inputs = json.loads((ROOT / "examples" / "runner_pfp_hip_driven.json").read_text())
        self.result = cds.assess(self.inputs).to_dict()
        self.encoded: EncodedJSON = encode_object(self.result)

    def work(self, store: SQLStore) -> Work:
        return store.assessment_work(source="api", inputs=self.inputs, result=self.result,
                                     patient_ref=None, caller="bench",
                                     result_json=self.encoded)[1]


def _commits_counted() -> list[int]:
    """Count the group commit's commits (each one flush under FULL)."""
    counted: list[int] = []
    commit = GroupCommit._commit

    def counting(self: GroupCommit, batch: Any) -> None:
        commit(self, batch)
        counted.append(len(batch))

    GroupCommit._commit = counting  # type: ignore[method-assign]
    return counted


def one_round(example: Example, synchronous: str, driver: bool, threads: int,
              writes: int, commits: list[int]) -> tuple[float, float, float, float]:
    """(user µs, system µs, wall µs per write, writes per commit) of ``writes`` writes."""
    with tempfile.TemporaryDirectory(prefix="gmed-store-") as tmp:
        store = SQLStore(f"sqlite:///{tmp}/s.sqlite3", b"bench", synchronous=synchronous,
                         driver_writes=driver)
        for _ in range(50):
            store.write(example.work(store))
        each = writes // threads
        batches = [[example.work(store) for _ in range(each)] for _ in range(threads)]

        def run(mine: list[Work]) -> None:
            for work in mine:
                store.write(work)

        pool = [threading.Thread(target=run, args=(b,)) for b in batches]
        commits.clear()
        before, wall = os.times(), time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        after, wall = os.times(), time.perf_counter() - wall
        n = each * threads
        return (1e6 * (after.user - before.user) / n, 1e6 * (after.system - before.system) / n,
                1e6 * wall / n, n / max(len(commits), 1))


def _cpu_us(fn: Callable[[], object], n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return 1e6 * (time.process_time() - t0) / n


def parts(example: Example, writes: int) -> None:
    """The CPU of a write outside the database: its rows, and the driver's parameters."""
    with tempfile.TemporaryDirectory(prefix="gmed-store-") as tmp:
        store = SQLStore(f"sqlite:///{tmp}/s.sqlite3", b"bench")
        work = example.work(store)

        def convert() -> None:
            for insert in work:
                INSERTS[insert.table].values(insert.rows)

        print(f"  parts: building the rows {_cpu_us(lambda: example.work(store), writes):.1f} µs,"
              f" the driver's parameters {_cpu_us(convert, writes):.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous", nargs="+", default=["OFF", "FULL"],
                        choices=["OFF", "NORMAL", "FULL"])
    args = parser.parse_args()
    example = Example()
    commits = _commits_counted()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} "
          f"cores; result {len(example.encoded)} bytes of JSON; {args.writes} writes a round, "
          f"median of {args.rounds} rounds")
    print(f"  {'synchronous':<11} {'path':<10} {'threads':>7} {'CPU µs/write':>12} {'user':>6} "
          f"{'system':>6} {'wall µs/write':>13} {'writes/commit':>13}")
    for synchronous in args.synchronous:
        for threads in (1, 4):
            figures: dict[str, list[tuple[float, float, float, float]]] = {w: [] for w in WAYS}
            for _ in range(args.rounds):
                for way, driver in WAYS.items():
                    figures[way].append(one_round(example, synchronous, driver, threads,
                                                  args.writes, commits))
            for way, rounds in figures.items():
                user, system, wall, per_commit = (statistics.median(f) for f in zip(*rounds,
                                                                                   strict=True))
                print(f"  {synchronous:<11} {way:<10} {threads:>7} {user + system:>12.0f} "
                      f"{user:>6.0f} {system:>6.0f} {wall:>13.0f} {per_commit:>13.1f}",
                      flush=True)
    parts(example, args.writes)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
