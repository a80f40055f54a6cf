"""CPU per assessment in ``cds``: ``cds.assess(record, model)`` + ``to_dict()`` + JSON encoding.

What the service does per record before the store (``service/serving/assessing.py``), without
Flask or the store: validate, rows, contributions, explanation, the Assessment, its JSON-ready
dict and its compact JSON (orjson with the options of ``service.http.jsontext.dumps``), for
the runner example, a red flag and a multi-complaint record, one record at a time as the
service does: each stage alone (``assess``, ``to_dict`` of one answer, ``encode`` of one dict)
and the three in a row (``total``). Each figure is the median over ``--repeats`` batches of
``--n`` calls of process CPU time (``time.process_time``: robust to the other processes on
the machine) per call, in µs.

``--baseline REF`` measures the ``cds/`` of a git commit too (exported to a temporary
directory), in alternating child processes, and prints before, after and their ratio in one
run, and whether the JSON of each example is byte-identical. The default baseline is the
commit before the work of issue 16 target 1; ``--baseline none`` measures this tree only.

    .venv/bin/python bench/assess_core.py [--n 500] [--repeats 7] [--rounds 2] [--baseline REF]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("runner_pfp_hip_driven", "red_flag_trauma_swelling", "intake_only_pfp_and_lbp")
STAGES = ("assess", "to_dict", "encode", "total")
BASELINE = "2e5f6214408e1fe3be2e4814999b4ba7a96e1559"
"""The code before issue 16 target 1's work on ``cds.assess`` (main of 2026-12-03)."""


def _stages(record: dict[str, Any], model: Any) -> dict[str, Callable[[], Any]]:
    """Each stage of one record's answer alone, and the three in a row."""
    import orjson

    import cds

    answer = cds.assess(record, model)
    data = answer.to_dict()
    option = orjson.OPT_NON_STR_KEYS  # as service.http.jsontext.dumps
    return {"assess": lambda: cds.assess(record, model), "to_dict": answer.to_dict,
            "encode": lambda: orjson.dumps(data, option=option),
            "total": lambda: orjson.dumps(cds.assess(record, model).to_dict(), option=option)}


def _measure(n: int, repeats: int) -> dict[str, Any]:
    """In this process (``cds`` from ``sys.path``): µs of CPU per call, median of batches."""
    import orjson

    import cds

    model = cds.load_model("production")
    out: dict[str, Any] = {}
    for name in EXAMPLES:
        record = json.loads((ROOT / "examples" / f"{name}.json").read_text())
        for _ in range(max(50, n // 5)):  # warm up (the per-pair caches fill)
            orjson.dumps(cds.assess(record, model).to_dict(), option=orjson.OPT_NON_STR_KEYS)
        stages = _stages(record, model)
        batches: dict[str, list[float]] = {s: [] for s in STAGES}
        for _ in range(repeats):
            for stage, call in stages.items():  # one record at a time, as the service does
                t0 = time.process_time()
                for _ in range(n):
                    call()
                batches[stage].append(1e6 * (time.process_time() - t0) / n)
        text = stages["total"]()
        out[name] = {"us": {s: statistics.median(v) for s, v in batches.items()},
                     "sha256": hashlib.sha256(text).hexdigest()}
    return out


def _export(ref: str, into: Path) -> None:
    """``cds/`` of commit ``ref`` into ``into`` (``git archive``)."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "cds"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


def _child(code_root: Path, n: int, repeats: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code_root), "GMED_MODELS_DIR": str(ROOT / "models")}
    done = subprocess.run([sys.executable, __file__, "--child", "--n", str(n), "--repeats",
                           str(repeats)], env=env, check=True, capture_output=True, text=True,
                          cwd=code_root)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="calls per batch")
    parser.add_argument("--repeats", type=int, default=7, help="batches per child (median)")
    parser.add_argument("--rounds", type=int, default=2, help="child processes per code")
    parser.add_argument("--baseline", default=BASELINE, help="git ref, or 'none'")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.n, args.repeats)))
        return
    with tempfile.TemporaryDirectory(prefix="gmed-assess-core-") as tmp:
        codes = {"after": ROOT}
        if args.baseline != "none":
            _export(args.baseline, Path(tmp))
            codes = {"before": Path(tmp), **codes}
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in codes}
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        for _ in range(args.rounds):
            for label, code_root in codes.items():
                runs[label].append(_child(code_root, args.n, args.repeats))
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"µs of CPU per call (median of {args.repeats} batches of {args.n}, then the "
          f"median of {args.rounds} processes)")
    for name in EXAMPLES:
        med = {label: {s: statistics.median(r[name]["us"][s] for r in rs) for s in STAGES}
               for label, rs in runs.items()}
        line = [f"{name:26s}"]
        for label in codes:
            line.append(f"{label}: " + " ".join(f"{s} {med[label][s]:6.1f}" for s in STAGES))
        if "before" in med:
            line.append(f"ratio total {med['before']['total'] / med['after']['total']:.2f}x")
            digests = {r[name]["sha256"] for rs in runs.values() for r in rs}
            line.append("JSON identical" if len(digests) == 1 else "JSON DIFFERS")
        print(" | ".join(line))


if __name__ == "__main__":
    main()
