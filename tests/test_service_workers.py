"""Real gunicorn (2 gthread workers, loopback, auth off in development mode, a temp SQLite store)
losing a worker under steady load.

Six client threads post assessments without keep-alive (a new connection per request, so any
worker can take any request). One worker is then killed:

* SIGKILL: gunicorn replaces it; the only failures are requests that were in flight when it died
  (each failure started before the kill, at most one per client thread); every request started
  after the kill succeeds (the survivor takes them until the replacement is ready, then both);
  the new pid answers on its own (the survivor paused with SIGSTOP for a moment); and every
  assessment a client got a 201 for is in the SQLite file read after shutdown.
* SIGTERM (graceful): the worker finishes what it holds; zero failures, all 201s stored.

A worker that starts on a corrupted artefact stays up and not ready (``/readyz`` 503 naming the
problem, requests 503) instead of crash-looping.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from bench.soak import Server, call
from training.artefact import seal

from .conftest import load_example
from .test_assess import _records_from_simulation

CLIENTS = 6
GUNICORN_THREADS = 4
BOUND_S = 60.0  # generous: only catches a hang
BODY = json.dumps(load_example("runner_pfp_hip_driven")).encode()


@dataclass
class Sent:
    started: float
    ended: float
    status: int
    assessment_id: str | None


class Load:
    """``CLIENTS`` threads posting assessments back to back until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]

    def _client(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            status, raw = call(self.port, "POST", "/v1/assessments", BODY, timeout=BOUND_S)
            aid = json.loads(raw)["id"] if status == 201 else None
            with self._lock:
                self.sent.append(Sent(started, time.monotonic(), status, aid))

    def successes_after(self, moment: float) -> int:
        with self._lock:
            return sum(1 for s in self.sent if s.started > moment and s.status == 201)

    def wait_for(self, count: int, after: float) -> None:
        deadline = time.monotonic() + BOUND_S
        while self.successes_after(after) < count:
            assert time.monotonic() < deadline, "the load stalled"
            time.sleep(0.02)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=BOUND_S)


@pytest.fixture
def server(tiny_model_dir: Path, tmp_path: Path) -> Iterator[Server]:
    with Server(tmp_path, model=str(tiny_model_dir), workers=2,
                threads=GUNICORN_THREADS) as running:
        yield running


def _replacement(server: Server, old: set[int]) -> tuple[int, float]:
    """The new worker's pid once it logged ready, and when that was seen."""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        new = (set(server.worker_pids()) - old) & server.ready_pids()
        if new:
            return new.pop(), time.monotonic()
        time.sleep(0.02)
    pytest.fail("gunicorn did not replace the worker:\n" + server.log()[-2000:])


def _assessed_alone(server: Server, others: set[int]) -> list[Sent]:
    """5 assessments posted while every worker in ``others`` is paused (SIGSTOP)."""
    for other in others:
        os.kill(other, signal.SIGSTOP)
    try:
        sent = []
        for _ in range(5):
            started = time.monotonic()
            status, raw = call(server.port, "POST", "/v1/assessments", BODY, timeout=10)
            sent.append(Sent(started, time.monotonic(), status,
                             json.loads(raw)["id"] if status == 201 else None))
        return sent
    finally:
        for other in others:
            os.kill(other, signal.SIGCONT)


def _stored_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM assessments")}


def test_a_worker_killed_mid_load_is_replaced_and_only_its_in_flight_requests_fail(
        server: Server) -> None:
    before = set(server.worker_pids())
    victim, survivor = sorted(before)
    with Load(server.port) as load:
        load.wait_for(60, after=0.0)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        new_pid, replaced_at = _replacement(server, before)
        load.wait_for(60, after=replaced_at)
    alone = _assessed_alone(server, {survivor})  # only the new worker can answer these
    assert [s.status for s in alone] == [201] * 5
    assert set(server.worker_pids()) == {survivor, new_pid}
    assert server.stop() == 0
    sent = load.sent + alone
    failed = [s for s in sent if s.status != 201]
    in_flight = [s for s in sent if s.started < killed_at < s.ended]
    print(f"requests {len(sent)}, failed {len(failed)} (statuses {[s.status for s in failed]}), "
          f"in flight at the kill {len(in_flight)}, replacement ready "
          f"{replaced_at - killed_at:.2f} s after the kill, "
          f"{sum(1 for s in sent if s.started > replaced_at)} requests after it")
    assert all(s.status == 0 for s in failed)  # connection cut, never an error answer
    assert all(s.started < killed_at for s in failed)  # nothing sent after the kill failed
    assert len(failed) <= CLIENTS  # each client has at most one request in flight
    assert all(s.status == 201 for s in sent if s.started > replaced_at)
    acknowledged = {s.assessment_id for s in sent if s.assessment_id}
    assert len(acknowledged) == len(sent) - len(failed)
    assert acknowledged <= _stored_ids(server.db_path)


def test_a_worker_stopped_gracefully_under_load_loses_nothing(server: Server) -> None:
    before = set(server.worker_pids())
    victim = min(before)
    with Load(server.port) as load:
        load.wait_for(60, after=0.0)
        os.kill(victim, signal.SIGTERM)
        _, replaced_at = _replacement(server, before)
        load.wait_for(60, after=replaced_at)
    assert server.stop() == 0
    print(f"requests {len(load.sent)}, failed {sum(s.status != 201 for s in load.sent)}, "
          f"{sum(1 for s in load.sent if s.started > replaced_at)} after the replacement")
    assert [s.status for s in load.sent if s.status != 201] == []
    assert {s.assessment_id for s in load.sent} <= _stored_ids(server.db_path)
    assert len(load.sent) >= 120


def test_workers_on_a_corrupted_artefact_stay_up_not_ready_and_answer_503(
        tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    artefact = tmp_path / "gmed-driver" / "0.0.9"
    shutil.copytree(tiny_model_dir, artefact)
    seal(artefact)
    data = bytearray((artefact / "model.txt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (artefact / "model.txt").write_bytes(bytes(data))
    work = tmp_path / "work"
    work.mkdir()
    with Server(work, model=str(artefact)).start(expect_ready=False) as server:
        workers = set(server.worker_pids())
        status, raw = call(server.port, "GET", "/readyz")
        assert status == 503
        reason = json.loads(raw)["reasons"]["model"]
        assert reason.startswith("gmed-driver/0.0.9: model.txt does not match its SHA-256")
        status, raw = call(server.port, "POST", "/v1/assessments", BODY)
        assert status == 503 and json.loads(raw)["error"]["code"] == "integrity"
        assert set(server.worker_pids()) == workers  # not crash-looping
    assert "model.txt does not match its SHA-256" in server.log()


# ---------------------------------------------------------------- concurrency correctness

RECORDS = 200
CONCURRENT = 32


def _answer(status: int, raw: bytes) -> str:
    """A 201's body without its id (the only thing allowed to differ), or the error as is."""
    body = json.loads(raw)
    if status == 201:
        body.pop("id")
    return f"{status} " + json.dumps(body, sort_keys=True)


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_one_thread_32_threads_and_two_gunicorn_workers_give_identical_results(
        tiny_model_dir: Path, make_app: Callable[..., Flask], tmp_path: Path) -> None:
    """200 simulated patients (seeded), assessed one by one in-process, by 32 threads sharing
    one app, and by 32 client threads through 2 gunicorn workers: the same answers, byte for byte
    (probabilities, factors, next best assessment), apart from the assessment ids."""
    bodies = [json.dumps(r).encode() for r in _records_from_simulation(RECORDS, 2027)]
    app = make_app(MODEL=str(tiny_model_dir), ENVIRONMENT="development")

    def in_process(body: bytes) -> str:
        response = app.test_client().post("/v1/assessments", data=body,
                                          content_type="application/json")
        return _answer(response.status_code, response.get_data())

    single = [in_process(b) for b in bodies]
    start = threading.Barrier(CONCURRENT)  # all 32 threads exist before the first request
    with ThreadPoolExecutor(CONCURRENT, initializer=start.wait) as pool:
        threaded = list(pool.map(in_process, bodies))
    work = tmp_path / "gunicorn"
    work.mkdir()
    with Server(work, model=str(tiny_model_dir), workers=2) as server:
        workers = server.worker_pids()
        cpu_before = [_cpu_ticks(pid) for pid in workers]
        start = threading.Barrier(CONCURRENT)
        with ThreadPoolExecutor(CONCURRENT, initializer=start.wait) as pool:
            served = list(pool.map(
                lambda b: _answer(*call(server.port, "POST", "/v1/assessments", b)), bodies))
        cpu_used = [_cpu_ticks(pid) - t for pid, t in zip(workers, cpu_before, strict=True)]
    statuses = [a.split(" ", 1)[0] for a in single]
    print(f"{len(bodies)} records, statuses {sorted(set(statuses))} ({statuses.count('201')} "
          f"assessed), CPU ticks per worker during the gunicorn pass {cpu_used}")
    assert statuses.count("201") >= RECORDS * 9 // 10, statuses  # mostly assessable records
    assert threaded == single
    assert served == single
    assert len(workers) == 2 and min(cpu_used) >= 5, cpu_used  # both workers did real work


def test_a_lower_case_log_level_boots_the_app(make_app: Callable[..., Flask]) -> None:
    """GMED_LOG_LEVEL is read by gunicorn_conf (lower-cased) and by the app: ``info`` once made
    every worker fail to boot ('Unknown level'); fixed in ``service/http/logs.py``."""
    app = make_app(LOG_LEVEL="info", ENVIRONMENT="development")
    assert app.test_client().get("/healthz").status_code == 200
