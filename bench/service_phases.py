"""Where an assessment's time goes under gunicorn, for ``bench/service_targets.py --phases``.

:func:`probed_app` is the service app plus, for this benchmark only, a record per
``POST /v1/assessments``: its wall time in the app (before_request to after_request), its
thread's CPU, its store write's wall time, and the garbage collector's pauses meanwhile (in any
thread); and the number of assessments each group commit of the SQL store carried. Each worker
serves (and clears) its records at ``/bench/phases``; :func:`collect_phases` asks until every
worker has answered, and :func:`print_phases` prints them beside the client's p99: whether the
tail is the service computing, its store's disk, the collector, or queueing outside the app.
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import time
from typing import Any

import numpy as np


class _Probe:
    """The records of one process (one worker after the fork)."""

    def __init__(self) -> None:
        self.records: list[tuple[float, float, float, float]] = []
        self.batches: list[int] = []
        self.commits: list[tuple[float, float]] = []  # (lock wait, locked: SQL and flush)
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.paused = 0.0
        self._started = 0.0

    def collector(self, phase: str, info: dict[str, int]) -> None:
        """A ``gc.callbacks`` entry: each collection's pause, by generation."""
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.paused += pause
            self.pauses[info["generation"]].append(pause)

    def drain(self) -> dict[str, Any]:
        out = {"pid": os.getpid(), "records": list(self.records), "batches": list(self.batches),
               "commits": list(self.commits),
               "pauses": {str(k): list(v) for k, v in self.pauses.items()}}
        self.records.clear()
        self.batches.clear()
        self.commits.clear()
        for v in self.pauses.values():
            v.clear()
        return out


def _time_the_store(store: Any, probe: _Probe) -> None:
    from flask import g

    write = store.write

    def timed_write(work: Any, *a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return write(work, *a, **k)
        finally:
            g.bench_write = time.perf_counter() - started

    store.write = timed_write
    writer = getattr(store, "_writer", None)  # the SQL store's group commit, if it has one
    if writer is not None and hasattr(writer, "_commit"):
        commit = writer._commit

        def counted(batch: list[Any]) -> Any:
            probe.batches.append(len(batch))
            return commit(batch)

        writer._commit = counted
    if writer is not None and hasattr(writer, "_interprocess"):
        _time_the_lock(writer, probe)


def _time_the_lock(writer: Any, probe: _Probe) -> None:
    """Each commit's wait for the writers' lock (another worker's commit ahead) and the time
    it then holds it (its statements and the disk flush)."""
    from contextlib import contextmanager

    interprocess = writer._interprocess

    @contextmanager
    def timed() -> Any:
        asked = time.perf_counter()
        with interprocess():
            got = time.perf_counter()
            try:
                yield
            finally:
                probe.commits.append((got - asked, time.perf_counter() - got))

    writer._interprocess = timed


def probed_app() -> Any:
    """The service app with the probe (see the module docstring)."""
    from flask import g, jsonify, request

    from service import create_app
    from service.store import get_store

    app = create_app()
    probe = _Probe()
    gc.callbacks.append(probe.collector)
    with app.app_context():
        _time_the_store(get_store(), probe)

    @app.before_request
    def _begin() -> None:
        g.bench = (time.perf_counter(), time.thread_time(), probe.paused)

    @app.after_request
    def _end(response: Any) -> Any:
        if request.path == "/v1/assessments" and "bench" in g:
            wall, cpu, paused = g.bench
            probe.records.append((time.perf_counter() - wall, time.thread_time() - cpu,
                                  g.get("bench_write", 0.0), probe.paused - paused))
        return response

    @app.get("/bench/phases")
    def phases() -> Any:
        return jsonify(probe.drain())

    return app


def collect_phases(port: int, workers: int) -> dict[str, Any]:
    """Every worker's records, merged (and cleared): asked until each worker has answered."""
    seen: set[int] = set()
    merged: dict[str, Any] = {"records": [], "batches": [], "commits": [], "pauses": {}}
    for _ in range(40 * workers):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/bench/phases")
            answer = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        seen.add(answer["pid"])
        merged["records"] += answer["records"]
        merged["batches"] += answer["batches"]
        merged["commits"] += answer["commits"]
        for k, v in answer["pauses"].items():
            merged["pauses"].setdefault(k, []).extend(v)
        if len(seen) >= workers:
            break
    return merged


def print_phases(label: str, p: dict[str, Any], client_p99: float) -> None:
    """Where the assessments' time went, beside the client's p99."""
    if not p["records"]:
        print(f"  phases of {label}: none recorded")
        return
    r = np.array(p["records"]) * 1000.0
    wall, cpu, write, paused = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
    slow = wall >= np.percentile(wall, 98)
    batches = np.array(p["batches"] or [0])
    gcs = ", ".join(f"gen{k} {len(v)} (max {1000 * max(v):.2f} ms)" if v else f"gen{k} 0"
                    for k, v in sorted(p["pauses"].items()))
    print(f"  phases of {label} ({len(wall)} assessments; client p99 {client_p99:.1f} ms):\n"
          f"    in the app p50 {np.percentile(wall, 50):.2f} p99 {np.percentile(wall, 99):.2f} ms;"
          f" thread CPU p50 {np.percentile(cpu, 50):.2f} p99 {np.percentile(cpu, 99):.2f};"
          f" store write p50 {np.percentile(write, 50):.2f} p99 {np.percentile(write, 99):.2f}\n"
          f"    slowest 2 %: {wall[slow].mean():.1f} ms in the app, of which store write "
          f"{write[slow].mean():.1f}, thread CPU {cpu[slow].mean():.2f}, GC "
          f"{paused[slow].mean():.2f}\n    collections: {gcs}; group commits "
          f"{len(p['batches'])}, assessments per commit mean {batches.mean():.2f} "
          f"max {batches.max()}", flush=True)
    if p["commits"]:
        c = np.array(p["commits"]) * 1000.0
        print(f"    per commit: waiting for the writers' lock p50 {np.percentile(c[:, 0], 50):.2f}"
              f" p99 {np.percentile(c[:, 0], 99):.2f} ms; holding it (statements, flush) p50 "
              f"{np.percentile(c[:, 1], 50):.2f} p99 {np.percentile(c[:, 1], 99):.2f} ms",
              flush=True)
