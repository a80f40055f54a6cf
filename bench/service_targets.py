"""Issue 16's service targets (1-4), each a ratio or a latency measured in one run.

Starts gunicorn as ``make serve`` runs it (``service/gunicorn_conf.py``: one gthread worker per
core, the shipped model, a fresh SQLite store with ``synchronous=FULL``, access logs at INFO as
shipped (written to /dev/null), auth off) and a local
fake FHIR server holding one heavy patient (:mod:`bench.fake_fhir`), then, round after round:

* **ceiling**  ``GET /ops/ping``, closed loop at ``--concurrency`` connections;
* **T1**  ``POST /v1/assessments`` (durable), same load: server CPU per assessment / ping's
  (target <= 2.0x);
* **T2**  ``POST /cds-services/gmed-driver`` with the 52-resource prefetch, same load: server CPU
  per call / ping's (<= 2.5x); and **T2 heavy**: the same hook with no prefetch for a patient of
  500 Observations and 50 Conditions that the service fetches, paged, from the fake FHIR
  server, one connection, one call after the other: p99 <= 50 ms, no error;
* **T3**  open loop at half the assessment route's own saturation throughput (as just measured
  in this round): requests sent at their due times by up to ``--concurrency`` connections
  whatever the answers, latency from each due time (no coordinated omission): p99 <= 15 ms;
* **T4**  closed-loop assessment throughput / ping's at ``--concurrency`` (8) connections
  (>= 50 %).

Server CPU is the gunicorn workers' user + system time from ``/proc/<pid>/stat`` (all threads),
divided by the requests they served; the load generator's own CPU is not in it. The load
generator runs on the same cores, so the ratios (which share that handicap) are the figures to
read. Each round's figures are printed, then the median of each target over the rounds, with
the load average and core count before and after.

``--phases`` serves the app through :func:`bench.service_phases.probed_app` (bench only) and
prints, for the closed and the open loop, where the slowest assessments spent their time: in
the app, its thread's CPU, its store write, the collector's pauses, assessments per group
commit; set against the client's latency, that says whether the p99 is the service computing,
its store's disk, the collector, or queueing outside the app (load generator, accept queue).
``--only ping assess`` skips the hook routes (quicker runs for T1, T3 and T4).

    .venv/bin/python bench/service_targets.py [--quick] [--rounds 3] [--seconds 6] [--phases]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fake_fhir import FakeFhirServer  # noqa: E402
from bench.service import (  # noqa: E402
    WARM_UP,
    _children,
    _cpu_seconds,
    _free_port,
    _one,
    drive,
    start_server,
)
from bench.service_phases import collect_phases, print_phases  # noqa: E402
from tests.service_fixtures import hook_call, runner_prefetch  # noqa: E402

Route = tuple[str, str, bytes | None]


def machine() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def _summary(latencies_s: list[float], errors: int, wall: float) -> dict[str, float]:
    ms = np.array(latencies_s) * 1000.0
    return {"requests": float(len(ms)), "errors": float(errors), "rps": len(ms) / wall,
            **{f"p{q}": float(np.percentile(ms, q)) if len(ms) else float("nan")
               for q in (50, 90, 99)}}


def _open_loop_client(port: int, route: Route, rate: float, seconds: float, connections: int,
                      out: Any) -> None:
    """Request ``i`` is due at ``start + i / rate``; the first free connection sends it (late if
    none is free: that lateness counts), latency from its due time."""
    method, path, body = route
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = [0]
    nxt = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.05

    def loop() -> None:
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= total:
                return
            due = start + i / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            status, _ = _one(port, method, path, body)
            done = time.perf_counter()
            with lock:
                if 200 <= status < 300:
                    latencies.append(done - due)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=loop) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((latencies, errors[0], time.perf_counter() - start))


def open_loop(port: int, route: Route, *, rate: float, seconds: float,
              connections: int) -> dict[str, float]:
    """Open-loop load at ``rate`` requests per second (in its own process)."""
    queue: Any = mp.Queue()
    proc = mp.Process(target=_open_loop_client,
                      args=(port, route, rate, seconds, connections, queue))
    proc.start()
    latencies, errors, wall = queue.get(timeout=seconds + 120)
    proc.join(timeout=30)
    return _summary(latencies, errors, wall)


def one_connection(port: int, route: Route, *, count: int) -> dict[str, float]:
    """``count`` requests one after the other (after a short warm-up)."""
    method, path, body = route
    for _ in range(5):
        _one(port, method, path, body)
    latencies, errors = [], 0
    start = time.perf_counter()
    for _ in range(count):
        status, elapsed = _one(port, method, path, body)
        if 200 <= status < 300:
            latencies.append(elapsed)
        else:
            errors += 1
    return _summary(latencies, errors, time.perf_counter() - start)


def _system_seconds(pids: list[int]) -> float:
    """System CPU time of these processes, all threads (from /proc)."""
    ticks = 0
    for pid in pids:
        try:
            ticks += int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[12])
        except OSError:
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def _measured(server_pid: int, run: Any, warm_up: int) -> dict[str, float]:
    """``run()``'s figures plus the workers' CPU per request served (``warm_up`` included), and
    the system part of it (the kernel's: sockets, the disk flush, thread wake-ups)."""
    workers = _children(server_pid)
    before, system = _cpu_seconds(workers), _system_seconds(workers)
    figures: dict[str, float] = run()
    served = figures["requests"] + figures["errors"] + warm_up
    figures["cpu_ms"] = 1000.0 * (_cpu_seconds(workers) - before) / served
    figures["sys_ms"] = 1000.0 * (_system_seconds(workers) - system) / served
    return figures


def one_round(port: int, pid: int, routes: dict[str, Route],
              args: argparse.Namespace) -> dict[str, dict[str, float]]:
    def closed(name: str) -> dict[str, float]:
        method, path, body = routes[name]
        return _measured(pid, lambda: drive(port, method, path, body, seconds=args.seconds,
                                            max_requests=args.max_requests,
                                            concurrency=args.concurrency), WARM_UP)

    hooks = "hook" in args.only
    if args.phases:
        collect_phases(port, args.workers)  # what came before this round is not this round's
    out = {name: closed(name) for name in ("ping", "assess", "hook") if name in args.only}
    if args.phases:
        print_phases("the closed loop", collect_phases(port, args.workers), out["assess"]["p99"])
    if hooks:
        out["heavy"] = _measured(pid, lambda: one_connection(port, routes["heavy"],
                                                             count=args.heavy_calls), 5)
    rate = out["assess"]["rps"] / 2
    out["open"] = _measured(pid, lambda: open_loop(port, routes["assess"], rate=rate,
                                                   seconds=args.seconds,
                                                   connections=args.concurrency), 0)
    out["open"]["offered"] = rate
    if args.phases:
        print_phases("the open loop", collect_phases(port, args.workers), out["open"]["p99"])
    return out


def targets(r: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each target's figure in one round."""
    out = {"T1 assess CPU / ping CPU (<= 2.0)": r["assess"]["cpu_ms"] / r["ping"]["cpu_ms"]}
    if "hook" in r:
        out.update({"T2 hook CPU / ping CPU (<= 2.5)": r["hook"]["cpu_ms"] / r["ping"]["cpu_ms"],
                    "T2 heavy patient p99 ms (<= 50)": r["heavy"]["p99"]})
    out.update({"T3 open-loop p99 ms at half saturation (<= 15)": r["open"]["p99"],
                "T4 assess / ping throughput (>= 0.50)": r["assess"]["rps"] / r["ping"]["rps"]})
    return out


def print_round(n: int, r: dict[str, dict[str, float]]) -> None:
    print(f"round {n}  ({machine()})")
    print(f"  {'route':<34} {'reqs':>6} {'errs':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'server CPU ms/req':>17} {'of it system':>12}")
    labels = {"ping": "ping (closed)", "assess": "assess (closed)",
              "hook": "hook 52 resources (closed)", "heavy": "hook heavy, fetched (1 conn)",
              "open": f"assess open loop {r['open']['offered']:.0f} req/s"}
    for key, label in labels.items():
        if key not in r:
            continue
        f = r[key]
        print(f"  {label:<34} {f['requests']:>6.0f} {f['errors']:>5.0f} {f['rps']:>8.1f} "
              f"{f['p50']:>7.2f} {f['p99']:>7.2f} {f['cpu_ms']:>17.2f} {f['sys_ms']:>12.2f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one short round (< 1 min): a smoke run, not figures to report")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0, help="per closed / open-loop run")
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--heavy-calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--model", default="production")
    parser.add_argument("--only", nargs="+", default=["ping", "assess", "hook"],
                        choices=["ping", "assess", "hook"],
                        help="closed-loop routes to run (ping and assess always; hook adds T2)")
    parser.add_argument("--phases", action="store_true",
                        help="serve the probed app and print where the assessments' time went")
    args = parser.parse_args()
    args.only = sorted({"ping", "assess", *args.only})
    if args.quick:
        args.rounds, args.seconds, args.heavy_calls = 1, 2.5, 40

    fhir = FakeFhirServer()
    record = json.loads((ROOT / "examples" / "runner_pfp_hip_driven.json").read_text())
    heavy = hook_call(prefetch={}, fhirServer=fhir.base,
                      fhirAuthorization={"access_token": "bench", "token_type": "Bearer",
                                         "expires_in": 300, "scope": "patient/*.read",
                                         "subject": "gmed-driver"})
    routes: dict[str, Route] = {
        "ping": ("GET", "/ops/ping", None),
        "assess": ("POST", "/v1/assessments", json.dumps(record).encode()),
        "hook": ("POST", "/cds-services/gmed-driver",
                 json.dumps(hook_call(prefetch=runner_prefetch(n_extra=40))).encode()),
        "heavy": ("POST", "/cds-services/gmed-driver", json.dumps(heavy).encode()),
    }
    print(f"gunicorn: {args.workers} gthread workers x {os.environ.get('GMED_THREADS', 4)} "
          f"threads, SQLite synchronous=FULL; {args.concurrency} connections; {args.rounds} "
          f"round(s) of {args.seconds:g} s per route; {machine()}")
    rounds = []
    with tempfile.TemporaryDirectory(prefix="gmed-targets-") as tmp:
        port = _free_port()
        app = "bench.service_phases:probed_app()" if args.phases else "service:create_app()"
        server = start_server(port, Path(tmp), args.model, args.workers, "FULL", app=app, extra_env={
            "GMED_FHIR_SERVER_ALLOWLIST": fhir.base, "GMED_OUTBOUND_PRIVATE_HOSTS": "localhost",
            "GMED_LOG_LEVEL": "INFO"})
        try:
            for n in range(1, args.rounds + 1):
                rounds.append(one_round(port, server.pid, routes, args))
                print_round(n, rounds[-1])
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            fhir.close()
    per_round = [targets(r) for r in rounds]
    print(f"\nmedian over {len(rounds)} round(s) [min - max]  ({machine()})")
    for name in per_round[0]:
        values = [t[name] for t in per_round]
        print(f"  {name:<48} {np.median(values):>8.2f}  [{min(values):.2f} - {max(values):.2f}]")
    print(f"  errors: {sum(int(f['errors']) for r in rounds for f in r.values())}; "
          f"server CPU ms/req (median): " + ", ".join(
              f"{k} {np.median([r[k]['cpu_ms'] for r in rounds]):.2f}"
              for k in ("ping", "assess", "hook", "heavy") if k in rounds[0]))


if __name__ == "__main__":
    main()
