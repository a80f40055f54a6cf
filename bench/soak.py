"""Soak: a steady open-loop rate against real gunicorn, worker memory sampled, model alias flipped.

Starts gunicorn (``service/gunicorn_conf.py``, 2 gthread workers, loopback, auth off in
development mode, a fresh SQLite store) on a temporary copy of ``models/`` that holds the
shipped version and a byte-identical copy of it registered as ``0.1.1`` (its metadata and
manifest updated), with ``GMED_MODEL_RELOAD_INTERVAL`` small. Then, for ``--seconds``:

* requests are *scheduled* at ``--rate`` per second (open loop: a slow answer does not slow the
  schedule; latency is measured from the scheduled start, so queueing counts), alternating
  ``POST /v1/assessments`` (one record) and ``POST /cds-services/gmed-driver`` (a patient-view
  call with its prefetch), each on a new connection (no keep-alive);
* every ``--sample`` seconds the RSS of each worker is read from ``/proc``;
* ``--flips`` times, evenly spaced, the ``production`` alias moves between 0.1.0 and 0.1.1.

It prints requests, errors (anything but 201/200: must be 0), p50/p99 per ``--window``, RSS per
worker over time with the ratio last/first after warm-up (``--warmup``, default a tenth of the
run), the versions clients saw after each flip and whether every answer for the same record was
identical apart from ids and the version. :func:`soak` returns the same figures;
``tests/test_soak.py`` runs it for ~30 s. :class:`Server` (start/stop gunicorn, its worker pids,
their readiness from gunicorn's log) is shared with ``tests/test_service_workers.py``.

    .venv/bin/python bench/soak.py [--rate 100] [--seconds 600] [--flips 4] [--sample 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cds.model import MODEL_ID  # noqa: E402
from tests.service_fixtures import hook_call  # noqa: E402
from training.artefact import seal  # noqa: E402
from training.registry import read_registry, set_alias  # noqa: E402

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
STARTUP_S = 90.0
READY_LINE = re.compile(r"\[(\d+)\] \[INFO\] worker (\d+) ready: ")
NOT_READY_LINE = re.compile(r"\[(\d+)\] \[WARNING\] worker (\d+) not ready: (.*)")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RECORD = json.loads((ROOT / "examples" / "runner_pfp_hip_driven.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def call(port: int, method: str, path: str, body: bytes | None = None,
         timeout: float = 30.0) -> tuple[int, bytes]:
    """One request on a fresh connection (``Connection: close``); status 0 when it failed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process in KiB (``None`` once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Server:
    """gunicorn with the ``make serve`` settings on a free loopback port, in ``work``."""

    def __init__(self, work: Path, *, model: str, workers: int = 2, threads: int = 4,
                 env: dict[str, str] | None = None) -> None:
        self.work = work
        self.port = free_port()
        self.log_path = work / "gunicorn.log"
        self.db_path = work / "store.sqlite3"
        metrics = work / "metrics"
        metrics.mkdir(exist_ok=True)
        self.env = {**os.environ, "GMED_BIND": f"127.0.0.1:{self.port}",
                    "GMED_WORKERS": str(workers), "GMED_THREADS": str(threads),
                    "GMED_MODEL": model, "GMED_AUTH": "off", "GMED_ENVIRONMENT": "development",
                    "GMED_PSEUDONYM_SECRET": "soak-secret", "GMED_LOG_LEVEL": "INFO",
                    "GMED_DATABASE_URL": f"sqlite:///{self.db_path}",
                    "PROMETHEUS_MULTIPROC_DIR": str(metrics), **(env or {})}
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, expect_ready: bool = True) -> Server:
        """Start; wait until every worker logged that it is ready (or, with ``expect_ready``
        false, that it is not)."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([GUNICORN, "-c", "service/gunicorn_conf.py",
                                      "service:create_app()"], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + STARTUP_S
        logged = self.ready_pids if expect_ready else self.not_ready_pids
        while len(logged() & set(self.worker_pids())) < self.workers:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("gunicorn did not become ready:\n" + self.log()[-3000:])
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The master's live children (its workers), from ``/proc``."""
        assert self.proc is not None
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def ready_pids(self) -> set[int]:
        """Workers that logged 'ready' (model loaded and store answering, before serving)."""
        return {int(m.group(2)) for m in READY_LINE.finditer(self.log())}

    def not_ready_pids(self) -> set[int]:
        return {int(m.group(2)) for m in NOT_READY_LINE.finditer(self.log())}

    def stop(self) -> int | None:
        """SIGTERM the master (graceful), wait; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def __enter__(self) -> Server:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def two_versions(work: Path) -> Path:
    """A copy of ``models/`` with the shipped version also as ``0.1.1`` (metadata and manifest
    updated, the model byte-identical); ``production`` -> 0.1.0. Returns the new models root."""
    root = work / "models"
    shipped_version = read_registry(ROOT / "models")["aliases"]["production"]
    source = ROOT / "models" / MODEL_ID / shipped_version
    for version in ("0.1.0", "0.1.1"):
        target = root / MODEL_ID / version
        shutil.copytree(source, target)
        meta = json.loads((target / "metadata.json").read_text())
        meta["version"] = version
        (target / "metadata.json").write_text(json.dumps(meta, indent=2))
        seal(target)
    set_alias(root, "production", "0.1.0")
    return root


def normalised(body: bytes, versions: tuple[str, ...]) -> tuple[str | None, str]:
    """(the model version the answer names, the answer with ids and that version blanked)."""
    data = json.loads(body)
    version = data.get("model", {}).get("version") if "model" in data else None
    text = json.dumps(data, sort_keys=True)
    if version is None:  # a CDS Hooks answer names the version in each card's source label
        found = re.search(r"model (\d+\.\d+\.\d+) \(", text)
        version = found.group(1) if found else None
    text = UUID.sub("<id>", text)
    for v in versions:
        text = re.sub(rf"(?<![\d.]){re.escape(v)}(?![\d.])", "<version>", text)
    return version, text


@dataclass
class Outcome:
    scheduled: float  # seconds since the start of the run
    kind: str
    status: int
    latency: float  # seconds from the scheduled start to the end of the answer
    version: str | None = None
    answer: str = ""


@dataclass
class Figures:
    requests: int = 0
    errors: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    windows: list[dict[str, float]] = field(default_factory=list)
    rss: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    rss_ratio: dict[int, float] = field(default_factory=dict)
    load: list[tuple[float, float]] = field(default_factory=list)  # (t, 1-min load average)
    flips: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    distinct_answers: dict[str, int] = field(default_factory=dict)
    workers_before: list[int] = field(default_factory=list)
    workers_after: list[int] = field(default_factory=list)
    achieved_rate: float = 0.0


def soak(server: Server, models_root: Path, *, rate: float, seconds: float, flips: int,
         sample_s: float, window_s: float, warmup_s: float,
         client_threads: int = 48) -> Figures:
    """Drive the open-loop load, sample RSS and flip the alias; return the figures."""
    bodies = {"assessment": ("/v1/assessments", json.dumps(RECORD).encode()),
              "cds-hook": ("/cds-services/gmed-driver", json.dumps(hook_call()).encode())}
    kinds = list(bodies)
    versions = ("0.1.0", "0.1.1")
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    start = time.monotonic()
    figures = Figures(workers_before=sorted(server.worker_pids()))

    def one(i: int, at: float) -> None:
        kind = kinds[i % len(kinds)]
        path, body = bodies[kind]
        status, raw = call(server.port, "POST", path, body)
        outcome = Outcome(at - start, kind, status, time.monotonic() - at)
        if status in (200, 201):
            outcome.version, outcome.answer = normalised(raw, versions)
        with lock:
            outcomes.append(outcome)

    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            now = time.monotonic() - start
            figures.load.append((now, os.getloadavg()[0]))
            for pid in server.worker_pids():
                kib = rss_kib(pid)
                if kib is not None:
                    figures.rss.setdefault(pid, []).append((now, kib))
            stop.wait(sample_s)

    flip_at = [seconds * (k + 1) / (flips + 1) for k in range(flips)]
    targets = ["0.1.1" if k % 2 == 0 else "0.1.0" for k in range(flips)]
    sampling = threading.Thread(target=sampler, daemon=True)
    sampling.start()
    with ThreadPoolExecutor(max_workers=client_threads) as pool:
        i = 0
        while True:
            at = start + i / rate
            if at - start >= seconds:
                break
            while flip_at and at - start >= flip_at[0]:
                flip_at.pop(0)
                target = targets[len(figures.flips)]
                set_alias(models_root, "production", target)
                figures.flips.append({"at_s": round(time.monotonic() - start, 1),
                                      "to": target})
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i, at)
            i += 1
    stop.set()
    sampling.join()
    figures.workers_after = sorted(server.worker_pids())
    figures.achieved_rate = i / (time.monotonic() - start)
    _summarise(figures, outcomes, window_s=window_s, warmup_s=warmup_s, seconds=seconds)
    return figures


def _summarise(figures: Figures, outcomes: list[Outcome], *, window_s: float, warmup_s: float,
               seconds: float) -> None:
    outcomes.sort(key=lambda o: o.scheduled)
    figures.requests = len(outcomes)
    for o in outcomes:
        figures.by_status[o.status] = figures.by_status.get(o.status, 0) + 1
    figures.errors = sum(1 for o in outcomes if o.status not in (200, 201))
    buckets: dict[int, list[float]] = defaultdict(list)
    for o in outcomes:
        buckets[int(o.scheduled // window_s)].append(o.latency * 1000.0)
    for b in sorted(buckets):
        lat = np.array(buckets[b])
        loads = [v for t, v in figures.load if b * window_s <= t < (b + 1) * window_s]
        figures.windows.append({"from_s": b * window_s, "requests": float(len(lat)),
                                "p50_ms": float(np.percentile(lat, 50)),
                                "p99_ms": float(np.percentile(lat, 99)),
                                "max_ms": float(lat.max()),
                                "load": float(np.mean(loads)) if loads else float("nan")})
    for pid, series in figures.rss.items():
        after = [kib for t, kib in series if t >= warmup_s]
        if len(after) >= 2:
            figures.rss_ratio[pid] = after[-1] / after[0]
    for o in outcomes:
        if o.version is not None:
            figures.versions[o.version] = figures.versions.get(o.version, 0) + 1
    answers: dict[str, set[str]] = defaultdict(set)
    for o in outcomes:
        if o.answer:
            answers[o.kind].add(o.answer)
    figures.distinct_answers = {kind: len(seen) for kind, seen in answers.items()}
    # what clients saw after each flip: the versions answered until the next flip
    bounds = [f["at_s"] for f in figures.flips] + [seconds]
    for k, flip in enumerate(figures.flips):
        seen = [o for o in outcomes if bounds[k] <= o.scheduled < bounds[k + 1] and o.version]
        first = next((o.scheduled for o in seen if o.version == flip["to"]), None)
        flip["first_seen_after_s"] = None if first is None else round(first - bounds[k], 2)
        flip["last_old_after_s"] = max((round(o.scheduled - bounds[k], 2) for o in seen
                                        if o.version != flip["to"]), default=0.0)
        flip["versions_seen"] = sorted({o.version for o in seen if o.version})


def report(f: Figures, *, rate: float, seconds: float) -> str:
    lines = [f"soak: {rate:g} req/s scheduled for {seconds:g} s (achieved schedule "
             f"{f.achieved_rate:.1f}/s), 2 gunicorn workers, no keep-alive",
             f"requests {f.requests}, errors {f.errors}, statuses {dict(sorted(f.by_status.items()))}",
             f"workers before {f.workers_before}, after {f.workers_after}",
             "latency per window (from the scheduled start):"]
    for w in f.windows:
        lines.append(f"  t={w['from_s']:>5.0f}s  n={w['requests']:>6.0f}  p50 {w['p50_ms']:7.1f} ms"
                     f"  p99 {w['p99_ms']:7.1f} ms  max {w['max_ms']:7.1f} ms"
                     f"  load average {w['load']:.1f} on {os.cpu_count()} cores")
    lines.append("RSS per worker (MiB) over time:")
    for pid, series in sorted(f.rss.items()):
        step = max(1, len(series) // 12)
        shown = series[::step] + ([series[-1]] if (len(series) - 1) % step else [])
        points = ", ".join(f"{t:.0f}s {kib / 1024:.1f}" for t, kib in shown)
        ratio = f.rss_ratio.get(pid)
        lines.append(f"  worker {pid}: {points}")
        lines.append(f"  worker {pid}: last/first after warm-up = "
                     + (f"{ratio:.3f}" if ratio is not None else "n/a"))
    lines.append(f"versions answered: {f.versions}")
    for flip in f.flips:
        lines.append(f"  flip at {flip['at_s']} s -> {flip['to']}: first seen after "
                     f"{flip['first_seen_after_s']} s, old version last seen after "
                     f"{flip['last_old_after_s']} s, versions {flip['versions_seen']}")
    lines.append(f"distinct answers per route (ids and version blanked): {f.distinct_answers}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--flips", type=int, default=4, help="alias moves during the run")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per latency window")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before the first RSS sample counted (default: 10%% of run)")
    parser.add_argument("--reload-interval", type=float, default=1.0)
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else args.seconds / 10
    with tempfile.TemporaryDirectory(prefix="gmed-soak-") as tmp:
        work = Path(tmp)
        models_root = two_versions(work)
        server = Server(work, model="production",
                        env={"GMED_MODELS_DIR": str(models_root),
                             "GMED_MODEL_RELOAD_INTERVAL": str(args.reload_interval)})
        with server:
            figures = soak(server, models_root, rate=args.rate, seconds=args.seconds,
                           flips=args.flips, sample_s=args.sample, window_s=args.window,
                           warmup_s=warmup)
        print(report(figures, rate=args.rate, seconds=args.seconds))
    if figures.errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
