"""Where the service's CPU goes: py-spy flame graphs of the request routes under gunicorn.

For each route (the durable assessment, the CDS Hooks call with the 52-resource prefetch, the
same call for the heavy patient fetched from :mod:`bench.fake_fhir`), starts gunicorn as
``make serve`` runs it, warms it up, then samples every worker with py-spy (``--subprocesses``,
non-blocking, active threads only) while a closed loop drives the route at ``--concurrency``
connections. Writes ``out/profile/<route>.svg`` (flame graph) and ``<route>.txt`` (collapsed
stacks), then prints, per route, the shares of the samples:

* by area of the code (a sample counts for the innermost area on its stack that matches, so the
  areas add up to 100 %): the store write, the answer's serialisation, the FHIR mapping, the
  assessment itself, the http plumbing (logs, metrics, headers, limits, deadline, errors), Flask
  and werkzeug, gunicorn, ...;
* by function, inclusive (the function or anything it calls) and self (the function itself).

Needs py-spy (the ``dev`` extra) and the right to trace the workers (root, or
``kernel.yama.ptrace_scope`` 0).

    .venv/bin/python bench/profile_service.py [--seconds 10] [--routes assess hook heavy] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fake_fhir import FakeFhirServer  # noqa: E402
from bench.service import _free_port, drive, start_server  # noqa: E402
from tests.service_fixtures import hook_call, runner_prefetch  # noqa: E402

OUT = ROOT / "out" / "profile"
# (area, path fragments): a sample belongs to the innermost frame matching one, in this order of
# precedence within a frame; "other" when none matches
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("store write (service/store/, sqlalchemy, sqlite)",
     ("service/store/", "sqlalchemy/", "sqlite3/")),
    ("answer serialisation (jsontext, orjson, json)",
     ("service/http/jsontext.py", "json/encoder.py", "json/__init__.py", "orjson")),
    ("FHIR mapping (cds/fhir/, cds/units.py)", ("cds/fhir/", "cds/units.py")),
    ("prefetch fetching (prefetch.py, httpget.py, http.client)",
     ("service/ehr/prefetch.py", "service/http/httpget.py", "http/client.py")),
    ("assess and explain (cds/ other than FHIR)", ("cds/",)),
    ("http plumbing (logs, metrics, headers, limits, deadline, errors, payload)",
     ("service/http/logs.py", "service/http/metrics.py", "service/http/headers.py", "service/http/limits.py",
      "service/http/deadline.py", "service/http/errors.py", "service/http/payload.py", "prometheus_client/",
      "logging/")),
    ("routes (service/routes/, serving/, ehr/, ...)", ("service/",)),
    ("Flask and werkzeug", ("flask/", "werkzeug/")),
    ("gunicorn (accept, parse, write)", ("gunicorn/",)),
)


def _area(stack: list[str]) -> str:
    for frame in reversed(stack):  # innermost first
        for area, fragments in AREAS:
            if any(f in frame for f in fragments):
                return area
    return "other (interpreter, selectors, threads)"


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    """py-spy's raw (collapsed) output: ``frame;frame;... count`` per line."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        if line.strip():
            frames, _, count = line.rpartition(" ")
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def shares(stacks: Counter[tuple[str, ...]], top: int) -> None:
    total = sum(stacks.values()) or 1
    areas: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for stack, n in stacks.items():
        areas[_area(list(stack))] += n
        for frame in set(stack):
            inclusive[frame] += n
        own[stack[-1]] += n
    print(f"  {total} samples; by area (innermost match, adds up to 100 %):")
    for area, n in areas.most_common():
        print(f"    {n / total:>6.1%}  {area}")
    ours = Counter({f: n for f, n in inclusive.items()
                    if any(p in f for p in ("service/", "cds/", "sqlalchemy/", "orjson",
                                            "json/", "prometheus_client/", "logging/"))})
    print(f"  top {top} of the project's and its libraries' functions, inclusive:")
    for frame, n in ours.most_common(top):
        print(f"    {n / total:>6.1%}  {_short(frame)}")
    print(f"  top {top} functions, self:")
    for frame, n in own.most_common(top):
        print(f"    {n / total:>6.1%}  {_short(frame)}")


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "lib/python3", str(ROOT) + "/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


def profile(route: str, method: str, path: str, body: bytes | None, args: argparse.Namespace,
            extra_env: dict[str, str]) -> None:
    spy = str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory(prefix="gmed-profile-") as tmp:
        port = _free_port()
        server = start_server(port, Path(tmp), "production", args.workers, "FULL",
                              extra_env=extra_env)
        try:
            drive(port, method, path, body, seconds=2, max_requests=500,
                  concurrency=args.concurrency)  # warm: model, UCUM registry, store
            common = ["record", "--pid", str(server.pid), "--subprocesses", "--gil",
                      "--rate", str(args.rate), "--duration", str(int(args.seconds))]
            spies = [subprocess.Popen([spy, *common, "--format", "flamegraph", "-o",
                                       str(args.out / f"{route}.svg")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                     subprocess.Popen([spy, *common, "--nolineno", "--format", "raw", "-o",
                                       str(args.out / f"{route}.txt")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
            time.sleep(1.0)  # py-spy attaches
            figures = drive(port, method, path, body, seconds=args.seconds, max_requests=10**6,
                            concurrency=args.concurrency)
            for s in spies:
                s.wait(timeout=args.seconds + 60)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    print(f"\n{route}: {path}, {figures['requests']:.0f} requests at {figures['rps']:.0f} req/s, "
          f"{figures['errors']:.0f} errors; {args.out / f'{route}.svg'}")
    shares(read_stacks(args.out / f"{route}.txt"), args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", type=Path, default=OUT,
                        help="where the graphs go (e.g. out/profile/after to keep the before)")
    parser.add_argument("--routes", nargs="+", default=["assess", "hook", "heavy"],
                        choices=["ping", "assess", "hook", "heavy"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fhir = FakeFhirServer()
    env = {"GMED_FHIR_SERVER_ALLOWLIST": fhir.base, "GMED_OUTBOUND_PRIVATE_HOSTS": "localhost",
           "GMED_LOG_LEVEL": "INFO"}
    record = json.loads((ROOT / "examples" / "runner_pfp_hip_driven.json").read_text())
    heavy = hook_call(prefetch={}, fhirServer=fhir.base,
                      fhirAuthorization={"access_token": "bench", "token_type": "Bearer",
                                         "expires_in": 300, "scope": "patient/*.read",
                                         "subject": "gmed-driver"})
    routes: dict[str, tuple[str, str, bytes | None]] = {"ping": ("GET", "/ops/ping", None),
              "assess": ("POST", "/v1/assessments", json.dumps(record).encode()),
              "hook": ("POST", "/cds-services/gmed-driver",
                       json.dumps(hook_call(prefetch=runner_prefetch(n_extra=40))).encode()),
              "heavy": ("POST", "/cds-services/gmed-driver", json.dumps(heavy).encode())}
    try:
        for route in args.routes:
            method, path, body = routes[route]
            profile(route, method, path, body, args, env)
    finally:
        fhir.close()


if __name__ == "__main__":
    main()
