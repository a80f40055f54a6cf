"""Batch scoring with exact contributions (issue 16, target 5): ``cds score`` end to end against
bare ``model.contributions`` on the same rows, and on a local Dask cluster of 1 and 2 workers.

    .venv/bin/python bench/score.py [--rows 50000] [--files 4] [--repeats 1] [--threads]
                                    [--model production] [--no-dask]

The batch is simulated and written as Parquet parts (not timed). Printed, median of the repeats:

* ``contributions alone``: ``model.contributions`` on the model matrix of every scorable row,
  already in memory (no reading, validation, derivation or writing);
* ``cds score, local``: :func:`training.score.score`, file -> file, everything included; and
  its ratio to the line above (the target: >= 50 %);
* ``dask, 1 worker`` and ``dask, 2 workers`` (processes unless ``--threads``, one thread
  each; the cluster is started and the model loaded on every worker before timing): the
  speed-up of 2 over 1, and the overhead per partition from Dask's task stream: the wall time
  outside the tasks (scheduling, transfer, the client) and the tasks' compute seconds
  (reading and scoring, fused into one task by Dask, and writing) beyond the CPU seconds of
  the same work in this process (``cds score, local``), each per partition. A task explains on
  one thread (the workers are the parallelism), so the local run, which explains on every
  CPU, is not the 1-worker run's baseline in wall time, only in CPU.

The machine's load average is printed beside the figures (a shared machine skews them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from cds.intake import rows_from_frame
from cds.model import load_model
from training.distributed import dask_client
from training.schema import canonical
from training.score import score, score_frame
from training.simulate import simulate
from training.tidy import tidy


def _median(repeats: int, run: Callable[[int], None]) -> tuple[float, list[float], float]:
    """Median wall seconds of ``repeats`` runs, each run's, and the median CPU seconds of this
    process (every thread; not Dask's worker processes): CPU is what the others' load on a
    shared machine distorts least."""
    times, cpu = [], []
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        run(r)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(times), times, statistics.median(cpu)


def _task_seconds(stream: list[dict[str, Any]], repeats: int) -> dict[str, float]:
    """Compute seconds per run of Dask's tasks (from the task stream) by kind: scoring
    (``_score_partition``: the work the local path does in process), reading, writing, all."""
    out = dict.fromkeys(("score", "read", "write", "all"), 0.0)
    for task in stream:
        key = str(task["key"])
        for part in task["startstops"]:
            if part["action"] != "compute":
                continue
            took = part["stop"] - part["start"]
            out["all"] += took
            kind = "score" if "_score_partition" in key else "read" if "read_parquet" in key \
                else "write" if "_write_partition" in key else None
            if kind:
                out[kind] += took
    return {k: v / repeats for k, v in out.items()}


def _batch(batch: Path, rows: int, files: int) -> Path:
    """``batch`` holding ``rows`` simulated rows in ``files`` Parquet files (simulated unless
    already there)."""
    parts = [batch / f"part-{i}.parquet" for i in range(files)]
    if all(p.exists() for p in parts) and len(list(batch.glob("part-*.parquet"))) == files \
            and sum(pq.ParquetFile(p).metadata.num_rows for p in parts) == rows:
        return batch
    batch.mkdir(parents=True, exist_ok=True)
    for old in batch.glob("part-*.parquet"):
        old.unlink()
    frame = simulate(rows, 8).drop(columns=["hip_driver"])
    step = -(-rows // files)
    for i, part in enumerate(parts):
        frame.iloc[i * step:(i + 1) * step].to_parquet(part, index=False)
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--model", default="production",
                        help="alias, version or artefact directory (default: the shipped model)")
    parser.add_argument("--threads", action="store_true",
                        help="Dask workers as threads of this process (default: processes)")
    parser.add_argument("--no-dask", action="store_true", help="local figures only")
    parser.add_argument("--data", type=Path,
                        help="keep the simulated batch in this directory and reuse it when it "
                             "holds --rows rows in --files files (simulating 1M rows takes a "
                             "minute)")
    args = parser.parse_args()
    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        batch = _batch(args.data or work / "batch", args.rows, args.files)
        frame = pd.concat([pd.read_parquet(f) for f in sorted(batch.glob("part-*.parquet"))],
                          ignore_index=True)  # the rows cds score explains, as a matrix
        scored = score_frame(model, frame)["raw_score"].notna().to_numpy()
        X = rows_from_frame(canonical(tidy(frame, dedupe=False).frame).loc[scored])
        model.contributions(X[:1000])  # warm the explainer's plan
        figures: dict[str, tuple[float, list[float], float]] = {}
        before = os.getloadavg()
        tasks: dict[str, dict[str, float]] = {}
        figures["contributions alone"] = _median(args.repeats, lambda r: model.contributions(X))
        score(model.path, batch, work / "warm")  # imports and caches, not timed
        figures["cds score, local"] = _median(
            args.repeats, lambda r: score(model.path, batch, work / f"local-{r}"))
        if not args.no_dask:
            from distributed import get_task_stream

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for workers in (1, 2):
                    with dask_client(workers=workers, processes=not args.threads) as client:
                        address = client.scheduler.address
                        score(model.path, batch, work / f"dask-warm-{workers}", engine="dask",
                              scheduler=address)  # every worker loads the model once
                        with get_task_stream(client) as stream:
                            name = f"dask, {workers} worker{'s' if workers > 1 else ''}"
                            figures[name] = _median(
                                args.repeats,
                                lambda r, a=address, w=workers: score(  # type: ignore[misc]
                                    model.path, batch, work / f"dask-{w}-{r}", engine="dask",
                                    scheduler=a))
                        tasks[name] = _task_seconds(stream.data, args.repeats)
    load = os.getloadavg()
    print(f"load average before the timed runs {before[0]:.2f}")
    print(f"{args.rows:,} rows ({len(X):,} scorable) in {args.files} Parquet files, model "
          f"{model.version}, median of {args.repeats}; load average {load[0]:.2f} on "
          f"{os.cpu_count()} cores:")
    for name, (seconds, runs, cpu) in figures.items():
        rows = len(X) if name == "contributions alone" else args.rows
        print(f"  {name:<20} {seconds:7.2f} s {rows / seconds:>11,.0f} rows/s  "
              f"(runs: {', '.join(f'{s:.2f}' for s in runs)})"
              + ("" if name.startswith("dask") else
                 f"; CPU {cpu:.2f} s, {rows / cpu:,.0f} rows per CPU second"))
    alone = len(X) / figures["contributions alone"][0]
    local = args.rows / figures["cds score, local"][0]
    alone_cpu = len(X) / figures["contributions alone"][2]
    local_cpu = args.rows / figures["cds score, local"][2]
    print(f"  cds score / contributions alone: {local / alone:.1%} of the throughput, "
          f"{local_cpu / alone_cpu:.1%} per CPU second (target >= 50 %)")
    if not args.no_dask:
        one, two = figures["dask, 1 worker"][0], figures["dask, 2 workers"][0]
        outside = one - tasks["dask, 1 worker"]["all"]
        inside = tasks["dask, 1 worker"]["all"] - figures["cds score, local"][2]
        print(f"  dask speed-up, 2 workers over 1: {one / two:.2f}x; overhead per partition "
              f"(1 worker) {(outside + inside) / args.files * 1000:,.0f} ms: "
              f"{outside / args.files * 1000:,.0f} ms outside the tasks, "
              f"{inside / args.files * 1000:,.0f} ms of task compute beyond the local run's "
              f"CPU ({args.files} partitions, {'threads' if args.threads else 'processes'})")
        for name, seconds in tasks.items():
            workers = 2 if "2" in name else 1
            outside = figures[name][0] - seconds["all"] / workers
            print(f"  {name}, per run: tasks computing {seconds['all']:.2f} s (scoring "
                  f"{seconds['score']:.2f}, reading {seconds['read']:.2f}, writing "
                  f"{seconds['write']:.2f}); outside the tasks (scheduling, transfer, the "
                  f"client) {outside:.2f} s, {outside / args.files * 1000:,.0f} ms per partition")


if __name__ == "__main__":
    main()
