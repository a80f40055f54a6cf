"""Single-record ``cds.assess`` in-process against a bare LightGBM ``pred_contrib`` on the same row.

Prints p50/p99 (microseconds) of each and the ratio of medians, measured in the same run with
interleaved blocks (the machine is small and noisy: read the ratio, not the absolute times).
Target (issue 2): the whole assess, validation and words included, at most 1.5x the bare call.

    .venv/bin/python bench/assess.py [--model production] [--n 3000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

import cds
from cds.intake import rows_from_record
from cds.model import MODEL_FILE

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _timed(fn, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out[i] = time.perf_counter_ns() - t0
    return out / 1000.0


def bench(model: cds.Model, example: str, n: int, blocks: int = 10) -> None:
    record = json.loads((EXAMPLES / f"{example}.json").read_text())
    _, rows = rows_from_record(cds.validate_record(record))
    row = rows  # every complaint of the record: the same rows assess explains
    booster = lgb.Booster(model_file=str(model.path / MODEL_FILE), params={"num_threads": 1})

    def bare() -> None:
        booster.predict(row, pred_contrib=True, num_threads=1)

    def whole() -> None:
        cds.assess(record, model=model)

    for fn in (bare, whole):
        _timed(fn, 200)  # warm up
    ours, base = [], []
    for _ in range(blocks):
        base.append(_timed(bare, n // blocks))
        ours.append(_timed(whole, n // blocks))
    a, b = np.concatenate(ours), np.concatenate(base)
    print(f"{example:32s} assess p50 {np.median(a):8.1f} us  p99 {np.percentile(a, 99):8.1f} us | "
          f"bare pred_contrib p50 {np.median(b):8.1f} us  p99 {np.percentile(b, 99):8.1f} us | "
          f"ratio of medians {np.median(a) / np.median(b):5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="production")
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    model = cds.load_model(args.model)
    print(f"model {model.id} {model.version}: {model.metadata['trees']} trees, "
          f"{model.metadata['params'].get('num_leaves')} leaves")
    for example in ("runner_pfp_hip_driven", "cyclist_itbs", "intake_only_pfp_and_lbp"):
        bench(model, example, args.n)


if __name__ == "__main__":
    main()
