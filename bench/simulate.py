"""Benchmark the simulated cohort: rows per second for 100k and 1M patients.

Prints, per size, the median (and max) wall time of a few runs of ``simulate`` (which includes
the exact ``p_true``), the share of that spent in ``true_probability`` alone, and the ratio to
a baseline measured in the same run: drawing the same number of rows x 40 standard normals,
the floor cost of any simulator with this many columns.

    .venv/bin/python bench/simulate.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from training.simulate import simulate, true_probability


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    simulate(1000, 0)  # warm imports and caches
    print(f"{'rows':>9} {'median s':>9} {'max s':>7} {'rows/s':>11} {'p_true %':>9} "
          f"{'x baseline':>11}")
    for n in (100_000, 1_000_000):
        sim = timed(lambda n=n: simulate(n, 1), args.repeats)
        frame = simulate(n, 1)
        post = timed(lambda frame=frame: true_probability(frame), args.repeats)
        rng = np.random.default_rng(0)
        base = timed(lambda n=n, rng=rng: rng.standard_normal((n, 40)), args.repeats)
        med = statistics.median(sim)
        print(f"{n:>9,} {med:>9.2f} {max(sim):>7.2f} {n / med:>11,.0f} "
              f"{100 * statistics.median(post) / med:>8.0f}% "
              f"{med / statistics.median(base):>10.1f}x")


if __name__ == "__main__":
    main()
