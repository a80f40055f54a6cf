"""Where the assessment route's share of the ceiling goes: the route as shipped against variants
that take the store write away, each measured against the ping route in the same run.

``bench/service.py`` measures the route as shipped. This benchmark answers "what would it reach
if the durable write cost nothing?", so that the issue's 50% target can be weighed against the
durability rule (committed and flushed before the 201). Each variant is the real app under the
same gunicorn settings, with one method of the store replaced in every worker
(:mod:`bench.breakdown_app`); only the benchmark does this, never the service.

* ``shipped``        the app as ``make serve`` runs it (SQLite, ``synchronous=FULL``)
* ``no-flush``       written to SQLite as shipped, never flushed (``synchronous=OFF``): what
                     the flush costs, against ``shipped``
* ``wait-not-write`` every store write replaced by a sleep as long as a typical commit
                     (``--wait-ms``): the request still waits, but nothing is written
* ``no-store``       the assessment is not stored at all (no id bookkeeping, no wait)

Prints, per variant: ping and assessment throughput, the assessment's share of the ceiling, its
p99, and the CPU the workers spent per assessment.

    .venv/bin/python bench/service_breakdown.py [--seconds 6] [--rounds 2] [--wait-ms 0.3]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.service import (  # noqa: E402
    _children,
    _cpu_seconds,
    _free_port,
    drive,
    start_server,
)

VARIANTS = ("shipped", "no-flush", "wait-not-write", "no-store")


def measure(variant: str, args: argparse.Namespace, record: bytes) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="gmed-breakdown-") as tmp:
        port = _free_port()
        app = f"bench.breakdown_app:create({variant!r}, {args.wait_ms / 1000.0!r})"
        server = start_server(port, Path(tmp), "production", args.workers, "FULL", app=app)
        try:
            ping = drive(port, "GET", "/ops/ping", None, seconds=args.seconds,
                         max_requests=args.max_requests, concurrency=args.concurrency)
            workers = _children(server.pid)
            before = _cpu_seconds(workers)
            assess = drive(port, "POST", "/v1/assessments", record, seconds=args.seconds,
                           max_requests=args.max_requests, concurrency=args.concurrency)
            cpu_ms = 1000.0 * (_cpu_seconds(workers) - before) / (assess["requests"] + 20)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    return {"ping": ping["rps"], "assess": assess["rps"], "share": assess["rps"] / ping["rps"],
            "p99": assess["p99"], "cpu_ms": cpu_ms,
            "errors": ping["errors"] + assess["errors"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="variants alternate, round by round")
    parser.add_argument("--wait-ms", type=float, default=0.3, help="the wait of wait-not-write")
    args = parser.parse_args()
    record = json.dumps(json.loads(
        (ROOT / "examples" / "runner_pfp_hip_driven.json").read_text())).encode()
    print(f"{args.workers} gthread workers, {args.concurrency} connections, {args.seconds:g} s "
          f"per route, variants alternating over {args.rounds} rounds")
    print(f"{'variant':<16} {'ping req/s':>10} {'assess req/s':>12} {'share':>6} "
          f"{'p99 ms':>7} {'CPU ms/assess':>13} {'errors':>6}")
    for _ in range(args.rounds):
        for variant in VARIANTS:
            f = measure(variant, args, record)
            print(f"{variant:<16} {f['ping']:>10.0f} {f['assess']:>12.0f} {f['share']:>6.1%} "
                  f"{f['p99']:>7.1f} {f['cpu_ms']:>13.2f} {f['errors']:>6.0f}", flush=True)


if __name__ == "__main__":
    main()
