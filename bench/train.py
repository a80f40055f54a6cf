"""Training time on simulated cohorts (default 100k rows): fit with size selection + calibration.

    .venv/bin/python bench/train.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import time

from training.dataset import prepare
from training.fit import fit
from training.pipeline import complaint_strata
from training.simulate import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    args = parser.parse_args()
    for n in args.rows:
        ds = prepare(simulate(n, 1))
        t0 = time.perf_counter()
        fitted = fit(ds.X, ds.y, complaint_strata(ds))
        elapsed = time.perf_counter() - t0
        chosen = next(s for s in fitted.selection if s["chosen"])
        print(f"{n:>9,} patients ({len(ds.y):,} rows): fit + size selection + calibration "
              f"{elapsed:6.1f} s; chosen {chosen['num_leaves']} leaves x {chosen['trees']} trees; "
              f"{len(ds.y) / elapsed:,.0f} rows/s; candidates "
              + ", ".join(f"{s['num_leaves']}L/{s['trees']}T" for s in fitted.selection))


if __name__ == "__main__":
    main()
