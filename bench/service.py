"""Loopback load test of the service under the ``make serve`` gunicorn settings.

Starts gunicorn (``service/gunicorn_conf.py``, one gthread worker per core, the shipped production
model, a fresh SQLite store, auth off) on a free loopback port and drives three routes of the same
app in the same run, each for a bounded time and count, at ``--concurrency`` connections:

* ``GET /ops/ping``                     constant JSON: the framework ceiling (Flask + gunicorn)
* ``POST /v1/assessments``              one patient record, assessed, explained and stored
* ``POST /cds-services/gmed-driver``    a patient-view call with a ~50-resource prefetch

Run once per SQLite durability setting (``FULL``, the default: on disk before the answer;
``NORMAL``: survives a service crash, not a machine crash). Prints, per route: requests, errors,
throughput, p50 / p90 / p99 latency (ms), the throughput of each route as a share of the
ceiling, and the CPU time the gunicorn workers spent per request (all threads, from /proc): what
the share of the ceiling comes down to. Targets (issue 3, 2-core machine): assessment throughput
>= 50% of the ceiling, p99 < 15 ms at 8 connections, zero errors. The load generator runs on the
same cores as the server (two processes of threads): read the ratios, which share that handicap,
before the absolute figures.

    .venv/bin/python bench/service.py [--seconds 8] [--max-requests 20000] [--concurrency 8]

``--rate R`` measures latency at a fixed offered load instead: one connection at a time, a
request every 1/R s for ``--seconds`` per route, each latency taken from the moment the request
was due (so a slow answer also counts against the requests queued behind it). This is the
latency an EHR sees at a given intake rate rather than at saturation.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.service_fixtures import hook_call, runner_prefetch  # noqa: E402

CLIENT_PROCESSES = 2
WARM_UP = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _one(port: int, method: str, path: str, body: bytes | None) -> tuple[int, float]:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        status = response.status
    except OSError:
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - t0


def _client(port: int, method: str, path: str, body: bytes | None, threads: int,
            deadline: float, budget: int, out: Any) -> None:
    """One client process: ``threads`` closed-loop connections until the deadline or budget."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def loop() -> None:
        while time.monotonic() < deadline:
            with lock:
                if len(latencies) + errors[0] >= budget:
                    return
            status, elapsed = _one(port, method, path, body)
            with lock:
                if 200 <= status < 300:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((latencies, errors[0]))


def drive(port: int, method: str, path: str, body: bytes | None, *, seconds: float,
          max_requests: int, concurrency: int) -> dict[str, float]:
    """Closed-loop load at ``concurrency`` connections; figures of the measured window."""
    for _ in range(WARM_UP):  # warm-up, not measured
        _one(port, method, path, body)
    queue: Any = mp.Queue()
    per_process = [concurrency // CLIENT_PROCESSES + (i < concurrency % CLIENT_PROCESSES)
                   for i in range(CLIENT_PROCESSES)]
    start = time.monotonic()
    deadline = start + seconds
    procs = [mp.Process(target=_client, args=(port, method, path, body, n, deadline,
                                              max_requests // CLIENT_PROCESSES, queue))
             for n in per_process if n]
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    wall = time.monotonic() - start
    latencies = np.array([x for lat, _ in results for x in lat]) * 1000.0
    errors = sum(e for _, e in results)
    return {"requests": float(len(latencies)), "errors": float(errors),
            "rps": len(latencies) / wall,
            "p50": float(np.percentile(latencies, 50)) if len(latencies) else float("nan"),
            "p90": float(np.percentile(latencies, 90)) if len(latencies) else float("nan"),
            "p99": float(np.percentile(latencies, 99)) if len(latencies) else float("nan")}


def paced(port: int, method: str, path: str, body: bytes | None, *, rate: float,
          seconds: float) -> dict[str, float]:
    """Open-loop load at ``rate`` requests per second; latency measured from each due time."""
    for _ in range(WARM_UP):
        _one(port, method, path, body)
    latencies, errors = [], 0
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        status, _ = _one(port, method, path, body)
        if 200 <= status < 300:
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1
    ms = np.array(latencies) * 1000.0
    return {"requests": float(len(ms)), "errors": float(errors),
            "rps": len(ms) / (time.perf_counter() - start),
            **{f"p{q}": float(np.percentile(ms, q)) if len(ms) else float("nan")
               for q in (50, 90, 99)}}


def _children(pid: int) -> list[int]:
    """The gunicorn workers: processes whose parent is the arbiter."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes, all threads (from /proc)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def start_server(port: int, work: Path, model: str, workers: int, synchronous: str,
                 app: str = "service:create_app()", extra_env: dict[str, str] | None = None
                 ) -> subprocess.Popen[bytes]:
    """gunicorn under ``service/gunicorn_conf.py`` serving ``app`` (a gunicorn app spec);
    ``extra_env`` adds or overrides settings (``GMED_*``)."""
    env = {**os.environ, "GMED_BIND": f"127.0.0.1:{port}", "GMED_WORKERS": str(workers),
           "GMED_SQLITE_SYNCHRONOUS": synchronous,
           "GMED_MODEL": model, "GMED_AUTH": "off", "GMED_ENVIRONMENT": "development",
           "GMED_LOG_LEVEL": "WARNING",
           "GMED_DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
           "GMED_PSEUDONYM_SECRET": "bench", "PROMETHEUS_MULTIPROC_DIR": str(work),
           **(extra_env or {})}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c",
                             "service/gunicorn_conf.py", app], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited during start-up")
        try:
            if _one(port, "GET", "/readyz", None)[0] == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not become ready within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per route")
    parser.add_argument("--max-requests", type=int, default=20000, help="cap per route")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=None,
                        help="fixed offered load (req/s, one connection) instead of saturation")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--model", default="production")
    parser.add_argument("--synchronous", nargs="+", default=["FULL", "NORMAL"],
                        choices=["FULL", "NORMAL"], help="SQLite durability settings to compare")
    args = parser.parse_args()

    record = json.loads((ROOT / "examples" / "runner_pfp_hip_driven.json").read_text())
    prefetch = runner_prefetch(n_extra=40)
    n_resources = 2 + sum(len(prefetch[k]["entry"]) for k in ("observations", "conditions",
                                                             "intake"))
    routes = [("ceiling  GET /ops/ping", "GET", "/ops/ping", None),
              ("assess   POST /v1/assessments", "POST", "/v1/assessments",
               json.dumps(record).encode()),
              (f"hook     POST /cds-services/gmed-driver ({n_resources} resources)", "POST",
               "/cds-services/gmed-driver", json.dumps(hook_call(prefetch=prefetch)).encode())]
    for synchronous in args.synchronous:
        figures = run(args, routes, synchronous)
        report(figures, routes, synchronous, args.rate)


def run(args: argparse.Namespace, routes: list[tuple[str, str, str, bytes | None]],
        synchronous: str) -> dict[str, dict[str, float]]:
    """One server, the three routes one after the other, same settings."""
    with tempfile.TemporaryDirectory(prefix="gmed-bench-") as tmp:
        port = _free_port()
        server = start_server(port, Path(tmp), args.model, args.workers, synchronous)
        try:
            load = (f"{args.rate:g} req/s offered on 1 connection for {args.seconds:g} s"
                    if args.rate else f"{args.concurrency} connections, <= {args.seconds:g} s or "
                    f"{args.max_requests} requests")
            print(f"\ngunicorn: {args.workers} gthread workers x {os.environ.get('GMED_THREADS', 4)}"
                  f" threads, {os.cpu_count()} cores, {load} per route, loopback, "
                  f"SQLite store synchronous={synchronous}")
            figures = {}
            for label, method, path, body in routes:
                workers = _children(server.pid)
                cpu_before = _cpu_seconds(workers)
                if args.rate:
                    figures[label] = paced(port, method, path, body, rate=args.rate,
                                           seconds=args.seconds)
                else:
                    figures[label] = drive(port, method, path, body, seconds=args.seconds,
                                           max_requests=args.max_requests,
                                           concurrency=args.concurrency)
                served = figures[label]["requests"] + figures[label]["errors"] + WARM_UP
                figures[label]["server_cpu_ms"] = (
                    1000.0 * (_cpu_seconds(workers) - cpu_before) / served)
            return figures
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def report(figures: dict[str, dict[str, float]],
           routes: list[tuple[str, str, str, bytes | None]], synchronous: str,
           rate: float | None = None) -> None:
    ceiling = figures[routes[0][0]]["rps"]
    print(f"{'route':<58} {'reqs':>7} {'errs':>5} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} "
          f"{'p99 ms':>7} {'of ceiling':>10} {'server CPU ms/req':>17}")
    for label, f in figures.items():
        print(f"{label:<58} {f['requests']:>7.0f} {f['errors']:>5.0f} {f['rps']:>8.1f} "
              f"{f['p50']:>7.2f} {f['p90']:>7.2f} {f['p99']:>7.2f} {f['rps'] / ceiling:>10.0%} "
              f"{f['server_cpu_ms']:>17.2f}")
    assess = figures[routes[1][0]]
    if rate:
        print(f"at {rate:g} req/s offered ({synchronous}; 'of ceiling' is not meaningful here): "
              f"p99 assess {assess['p99']:.1f} ms, hook {figures[routes[2][0]]['p99']:.1f} ms; "
              f"errors: {sum(int(f['errors']) for f in figures.values())}")
        return
    print(f"targets ({synchronous}): assess >= 50% of ceiling: {assess['rps'] / ceiling:.0%}; "
          f"p99 < 15 ms: assess {assess['p99']:.1f} ms, hook "
          f"{figures[routes[2][0]]['p99']:.1f} ms; errors: "
          f"{sum(int(f['errors']) for f in figures.values())}")

if __name__ == "__main__":
    main()
