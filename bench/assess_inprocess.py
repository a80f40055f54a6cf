"""CPU per durable assessment in process: the Flask test client posting the runner example.

Builds the app as ``bench/service.py`` configures gunicorn's (auth off, SQLite ``FULL``, the
shipped model), warms up, then times ``--n`` posts of ``examples/runner_pfp_hip_driven.json``
(process CPU time, so the fsync wait does not count) and prints µs per assessment and per ping.
``--profile FILE`` writes a cProfile of the timed loop instead.

    .venv/bin/python bench/assess_inprocess.py [--n 2000] [--profile out/assess.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gmed-inproc-") as tmp:
        os.environ.update({"GMED_SQLITE_SYNCHRONOUS": "FULL", "GMED_MODEL": "production",
                           "GMED_AUTH": "off", "GMED_ENVIRONMENT": "development",
                           "GMED_LOG_LEVEL": "WARNING",
                           "GMED_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.sqlite3'}",
                           "GMED_PSEUDONYM_SECRET": "bench", "PROMETHEUS_MULTIPROC_DIR": tmp})
        from service import create_app

        client = create_app().test_client()
        record = json.dumps(json.loads(
            (ROOT / "examples" / "runner_pfp_hip_driven.json").read_text())).encode()
        headers = {"Content-Type": "application/json"}

        def assess() -> None:
            answer = client.post("/v1/assessments", data=record, headers=headers)
            assert answer.status_code == 201, answer.get_data(as_text=True)

        def ping() -> None:
            assert client.get("/ops/ping").status_code == 200

        for _ in range(200):
            assess()
            ping()
        if args.profile is not None:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for _ in range(args.n):
                assess()
            profiler.disable()
            profiler.dump_stats(args.profile)
            print(f"profile of {args.n} assessments written to {args.profile}")
            return
        for name, call in (("ping", ping), ("assessment", assess), ("ping", ping)):
            before = os.times()
            for _ in range(args.n):
                call()
            after = os.times()
            user = 1e6 * (after.user - before.user) / args.n
            system = 1e6 * (after.system - before.system) / args.n
            print(f"{name:<11} {user + system:8.0f} µs CPU each (user {user:.0f}, system "
                  f"{system:.0f}; {args.n} in process)", flush=True)


if __name__ == "__main__":
    main()
