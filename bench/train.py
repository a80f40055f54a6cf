"""Training time on simulated cohorts: validation (pandera), and fit with size selection and
calibration, for each size (default 10k, 100k and 1M rows); optionally the Dask engine too.

    .venv/bin/python bench/train.py [--rows 10000 100000 1000000] [--dask] [--tune-trials 0]
                                    [--threads 0]

Figures: wall time per step, rows per second, the chosen model; with --dask the same fit on a
2-worker LocalCluster and its ratio to the single-process fit, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

from training.dataset import prepare
from training.fit import fit
from training.pipeline import complaint_strata
from training.simulate import simulate
from training.tune import Budget, candidates
from training.validation import validate


def _chosen(fitted: object) -> str:
    chosen = next(s for s in fitted.selection if s["chosen"])  # type: ignore[attr-defined]
    return f"{chosen['num_leaves']} leaves x {chosen['trees']} trees"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dask", action="store_true", help="also fit on a 2-worker LocalCluster")
    parser.add_argument("--tune-trials", type=int, default=0, help="also time a tuning run")
    parser.add_argument("--threads", type=int, default=0,
                        help="LightGBM threads (0: all cores; 1 is steadier on a busy machine)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"LightGBM threads: {args.threads or 'all'}")
    print(f"{'rows':>10} {'validate s':>11} {'fit s':>8} {'rows/s':>10}  chosen")
    for n in args.rows:
        frame = simulate(n, 1)
        t0 = time.perf_counter()
        checked = validate(frame)
        t_validate = time.perf_counter() - t0
        ds = prepare(checked.accepted)
        t0 = time.perf_counter()
        fitted = fit(ds.X, ds.y, complaint_strata(ds), num_threads=args.threads)
        t_fit = time.perf_counter() - t0
        print(f"{n:>10,} {t_validate:>11.1f} {t_fit:>8.1f} {len(ds.y) / t_fit:>10,.0f}  "
              f"{_chosen(fitted)} ({len(ds.y):,} trainable rows)", flush=True)
        if args.tune_trials:
            t0 = time.perf_counter()
            tuned = fit(ds.X, ds.y, complaint_strata(ds), num_threads=args.threads,
                        candidates=candidates(Budget(trials=args.tune_trials), 1))
            t_tune = time.perf_counter() - t0
            print(f"{'':>10} tune {args.tune_trials} trials {t_tune:.1f} s "
                  f"({t_tune / t_fit:.1f}x the default fit); chosen {_chosen(tuned)}", flush=True)
        if args.dask:
            from training.distributed import dask_client, fit_dask

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with dask_client(workers=2, processes=True) as client:
                    t0 = time.perf_counter()
                    spread = fit_dask(ds.X, ds.y, complaint_strata(ds), client=client)
                    t_dask = time.perf_counter() - t0
            print(f"{'':>10} dask 2 workers: fit {t_dask:.1f} s ({t_dask / t_fit:.2f}x single "
                  f"process; no early stopping, 400 rounds per candidate); chosen {_chosen(spread)}",
                  flush=True)


if __name__ == "__main__":
    main()
