"""CPU per assessment in ``cds``: ``cds.assess(record, model)`` + ``to_dict()`` + JSON encoding.

What the service does per record before the store (``service/serving/assessing.py``), without
Flask or the store: validate, rows, contributions, explanation, the Assessment, its JSON-ready
dict and its compact JSON (orjson with the options of ``service.http.jsontext.dumps``), for
the runner example, a red flag and a multi-complaint record, one record at a time as the
service does: each stage alone (``assess``, ``to_dict`` of one answer, ``encode`` of one dict)
and the three in a row (``total``). Each figure is the median over ``--repeats`` batches of
``--n`` calls of process CPU time (``time.process_time``: robust to the other processes on
the machine) per call, in µs.

``--baseline REF`` also loads the ``cds/`` of a git commit (exported to a temporary directory,
imported beside this tree's under its own module objects), and the two are timed batch by
batch in turn in this one process, so that both see the same load: before, after, their ratio,
and whether each example's JSON is byte-identical. The default baseline is the commit before
the work of issue 16 target 1; ``--baseline none`` times this tree only.

    .venv/bin/python bench/assess_core.py [--n 300] [--repeats 9] [--baseline REF]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import types
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("runner_pfp_hip_driven", "red_flag_trauma_swelling", "intake_only_pfp_and_lbp")
STAGES = ("assess", "to_dict", "encode", "total")
BASELINE = "2e5f6214408e1fe3be2e4814999b4ba7a96e1559"
"""The code before issue 16 target 1's work on ``cds.assess`` (main of 2026-12-03)."""
OPTION = orjson.OPT_NON_STR_KEYS  # as service.http.jsontext.dumps


def _import_cds(code_root: Path) -> types.ModuleType:
    """``cds`` imported from ``code_root``, kept out of ``sys.modules`` afterwards (its functions
    hold their own module globals), so that two versions live side by side."""
    def ours() -> dict[str, types.ModuleType]:
        return {k: m for k, m in sys.modules.items() if k == "cds" or k.startswith("cds.")}

    saved = ours()
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(code_root))
    try:
        import cds

        return cds
    finally:
        sys.path.remove(str(code_root))
        for name in ours():
            del sys.modules[name]
        sys.modules.update(saved)


def _stages(cds: Any, record: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """Each stage of one record's answer alone, and the three in a row."""
    model = cds.load_model("production")
    answer = cds.assess(record, model)
    data = answer.to_dict()
    return {"assess": lambda: cds.assess(record, model), "to_dict": answer.to_dict,
            "encode": lambda: orjson.dumps(data, option=OPTION),
            "total": lambda: orjson.dumps(cds.assess(record, model).to_dict(), option=OPTION)}


def _export(ref: str, into: Path) -> None:
    """``cds/`` of commit ``ref`` into ``into`` (``git archive``)."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "cds"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


def _time(call: Callable[[], Any], n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        call()
    return 1e6 * (time.process_time() - t0) / n


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="calls per batch")
    parser.add_argument("--repeats", type=int, default=9, help="batches per stage and version")
    parser.add_argument("--baseline", default=BASELINE, help="git ref, or 'none'")
    args = parser.parse_args()
    os.environ.setdefault("GMED_MODELS_DIR", str(ROOT / "models"))
    with tempfile.TemporaryDirectory(prefix="gmed-assess-core-") as tmp:
        versions = {"after": _import_cds(ROOT)}
        if args.baseline != "none":
            _export(args.baseline, Path(tmp))
            versions = {"before": _import_cds(Path(tmp)), **versions}
    print(f"load average before: {_load()}", flush=True)
    print(f"µs of CPU per call, median of {args.repeats} batches of {args.n} (versions in turn)")
    for name in EXAMPLES:
        record = json.loads((ROOT / "examples" / f"{name}.json").read_text())
        stages = {label: _stages(cds, record) for label, cds in versions.items()}
        texts = {label: s["total"]() for label, s in stages.items()}
        for s in stages.values():  # warm up (the per-pair caches fill)
            _time(s["total"], max(50, args.n // 5))
        us: dict[str, dict[str, list[float]]] = {v: {s: [] for s in STAGES} for v in versions}
        for _ in range(args.repeats):
            for stage in STAGES:
                for label in versions:
                    us[label][stage].append(_time(stages[label][stage], args.n))
        med = {v: {s: statistics.median(t) for s, t in by.items()} for v, by in us.items()}
        line = [f"{name:26s}"]
        for label in versions:
            line.append(f"{label}: " + " ".join(f"{s} {med[label][s]:5.1f}" for s in STAGES))
        if "before" in med:
            before, after = med["before"], med["after"]
            core = (before["assess"] + before["to_dict"]) / (after["assess"] + after["to_dict"])
            line.append(f"total {before['total'] / after['total']:.2f}x, "
                        f"assess+to_dict {core:.2f}x")
            line.append("JSON identical" if len(set(texts.values())) == 1 else "JSON DIFFERS")
        print(" | ".join(line), flush=True)
    print(f"load average after:  {_load()}")


if __name__ == "__main__":
    main()
