"""CPU per CDS Hooks call in process: the Flask test client posting the 52-resource prefetch.

Builds the app as ``bench/assess_inprocess.py`` does (auth off, SQLite ``FULL``, the shipped
model), warms up, then times ``--n`` calls of ``POST /cds-services/gmed-driver`` with the
prefetch that ``bench/service_targets.py`` sends (``runner_prefetch(n_extra=40)``), beside ping
and a plain assessment of the same record in the same run, the three taking turns of
``--chunk`` calls so that the machine's load falls on each alike. CPU is the process's user and
system time (``getrusage``: the fsync wait does not count). Prints µs per call, the hook's ratio
to ping and the share of the hook's CPU that the plain assessment is. Each call has a fresh
``hookInstance``. ``--profile FILE`` writes a cProfile of ``--n`` timed hook calls instead.

    .venv/bin/python bench/hook_inprocess.py [--n 1000] [--rounds 3] [--chunk 50]
    .venv/bin/python bench/hook_inprocess.py --profile out/hook.prof
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.inprocess import bench_app, ping, post, warm_or_profile  # noqa: E402
from tests.service_fixtures import hook_call, runner_prefetch  # noqa: E402


def machine() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def _cpu_us(calls: dict[str, Callable[[], None]], n: int, chunk: int) -> dict[str, float]:
    """CPU µs (user + system) per call of each of ``calls``, ``n`` calls each, run in turns of
    ``chunk`` calls so that a change of the machine's load falls on every route alike."""
    spent = dict.fromkeys(calls, 0.0)
    for _ in range(max(1, n // chunk)):
        for name, call in calls.items():
            before = resource.getrusage(resource.RUSAGE_SELF)
            for _ in range(chunk):
                call()
            after = resource.getrusage(resource.RUSAGE_SELF)
            spent[name] += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {name: 1e6 * total / (max(1, n // chunk) * chunk) for name, total in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=50, help="calls of one route in a turn")
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gmed-hook-inproc-") as tmp:
        client = bench_app(tmp).test_client()
        body = hook_call(prefetch=runner_prefetch(n_extra=40))
        head, _, tail = json.dumps(body).partition(body["hookInstance"])
        # the record the hook reads from that prefetch, posted as a plain assessment
        plain = json.dumps(_record_of(body)).encode()
        hook = post(client, "/cds-services/gmed-driver",
                    lambda: f"{head}{uuid.uuid4()}{tail}".encode(), 200)
        assess, ping_ = post(client, "/v1/assessments", lambda: plain, 201), ping(client)
        if warm_or_profile([hook, assess, ping_], args.n, args.profile, "hook calls"):
            return
        figures: dict[str, list[float]] = {"ping": [], "assessment": [], "hook": []}
        for r in range(args.rounds):
            each = _cpu_us({"ping": ping_, "assessment": assess, "hook": hook}, args.n,
                           args.chunk)
            for name, us in each.items():
                figures[name].append(us)
            print(f"round {r + 1}: ping {each['ping']:.0f} µs, assessment "
                  f"{each['assessment']:.0f} µs, hook {each['hook']:.0f} µs CPU each; hook / "
                  f"ping {each['hook'] / each['ping']:.2f}x, the plain assessment "
                  f"{each['assessment'] / each['hook']:.0%} of the hook ({machine()})",
                  flush=True)
        med = {k: statistics.median(v) for k, v in figures.items()}
        print(f"median of {args.rounds} rounds: ping {med['ping']:.0f} µs, assessment "
              f"{med['assessment']:.0f} µs, hook {med['hook']:.0f} µs; hook / ping "
              f"{med['hook'] / med['ping']:.2f}x; hook beyond the plain assessment "
              f"{med['hook'] - med['assessment']:.0f} µs ({machine()})")


def _record_of(call: dict[str, object]) -> dict[str, object]:
    """The contract record the hook builds from the call's prefetch (the same reader)."""
    from datetime import date

    from cds.fhir.read import record_from_fhir

    prefetch = call["prefetch"]
    assert isinstance(prefetch, dict)
    record = record_from_fhir(list(prefetch.values()), today=date.today(), lenient=True).record
    record["patient_id"] = "p1"
    return record


if __name__ == "__main__":
    main()
