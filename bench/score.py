"""Batch scoring with exact contributions: rows per second in one process and on a 2-worker
local Dask cluster, on the same files and model, in the same run.

    .venv/bin/python bench/score.py [--rows 200000] [--files 8] [--repeats 3] [--processes]

A model is trained on 20k simulated rows (or give --model); the batch is simulated, written as
Parquet parts, then scored by ``training.score.score`` with each engine. Prints the median of the
repeats for each and the ratio Dask / single process. The Dask timing includes scheduling and
writing the output; the cluster is started before timing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from training.distributed import dask_client
from training.pipeline import train
from training.score import score
from training.simulate import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", help="artefact directory (default: train a small one)")
    parser.add_argument("--processes", action="store_true",
                        help="Dask workers as processes (default: threads in this process)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            simulate(20_000, 7).to_parquet(work / "train.parquet", index=False)
            model = str(train(work / "train.parquet", work / "models" / "gmed-driver" / "bench",
                              reps=20))
        batch = work / "batch"
        batch.mkdir()
        frame = simulate(args.rows, 8).drop(columns=["hip_driver"])
        step = -(-args.rows // args.files)
        for i in range(args.files):
            frame.iloc[i * step:(i + 1) * step].to_parquet(batch / f"part-{i}.parquet", index=False)
        timings: dict[str, list[float]] = {"single process": [], "dask, 2 workers": []}
        for r in range(args.repeats):
            t0 = time.perf_counter()
            score(model, batch, work / f"local-{r}")
            timings["single process"].append(time.perf_counter() - t0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with dask_client(workers=2, processes=args.processes) as client:
                address = client.scheduler.address
                for r in range(args.repeats):
                    t0 = time.perf_counter()
                    score(model, batch, work / f"dask-{r}", engine="dask", scheduler=address)
                    timings["dask, 2 workers"].append(time.perf_counter() - t0)
        print(f"{args.rows:,} rows in {args.files} files, contributions for every row, "
              f"median of {args.repeats}:")
        medians = {k: statistics.median(v) for k, v in timings.items()}
        for name, seconds in medians.items():
            print(f"  {name:<16} {seconds:6.2f} s  {args.rows / seconds:>10,.0f} rows/s  "
                  f"(runs: {', '.join(f'{s:.2f}' for s in timings[name])})")
        print(f"  ratio dask / single process: {medians['single process'] / medians['dask, 2 workers']:.2f}x "
              "throughput")


if __name__ == "__main__":
    main()
