"""Exact explanations: ``cds.treeshap`` against LightGBM ``pred_contrib`` and ``shap.TreeExplainer``.

For 1, 1k, 100k and 1M records (``--max-rows`` cuts the list), in one run and on the same model
and records: rows/s for batches (LightGBM and ours on ``--threads`` threads; shap's TreeExplainer
is single-threaded and is skipped above 100k), p50/p99 for single records (interleaved blocks:
the machine is small and shared, read the ratios), peak memory above the input (peak RSS, reset
before each call, so LightGBM's C++ buffers count too) against the output array, the ratios, and
the exactness of ours against LightGBM (max |difference|, additivity) on the largest batch
LightGBM explains.

Model: the shipped one (``models/registry.json`` -> production -> ``model.txt``) explaining
simulated records, else (or with ``--synthetic``) a 300-tree, 31-leaf model trained here on 30
random features with 5% missing values (``--max-depth`` limits its depth; LightGBM's default is
unlimited, which makes deep paths).

    .venv/bin/python bench/explain.py [--max-rows 1000000] [--synthetic] [--threads 2]

``--models`` instead compares, per model size (the shipped model; synthetic 300 trees x 31
leaves and 500 trees x 63 leaves, both of unlimited depth), ours against ``pred_contrib`` on the
same ``--rows`` records: the median rows/s of ``--repeats`` interleaved runs each, their ratio,
and the max |difference| (issue #16 target 6: >= 10x, >= 15x on the shipped model, exact to 1e-9);
beside them the engine ours picked (numpy, or the numba kernel for deep trees), the plan's build
time, its tables' memory and the first call's time (numba's import and cached compile), all
outside the timed runs. ``--numpy`` adds the numpy engine's rows/s.

    .venv/bin/python bench/explain.py --models [--rows 5000] [--repeats 5] [--threads 2] [--numpy]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np

from cds.treeshap import TreeExplainer

SIZES = (1, 1_000, 100_000, 1_000_000)
SHAP_MAX_ROWS = 100_000


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _measured(fn: Callable[[], object]) -> tuple[float, int]:
    """(seconds, peak bytes above the resident set before the call)."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set
    before = _status()["VmRSS"]
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return seconds, _status()["VmHWM"] - before


def _shipped() -> tuple[str, str] | None:
    from cds.model import MODEL_FILE, ModelUnavailable, resolve, verify_manifest

    try:
        directory = resolve("production")
    except ModelUnavailable:
        return None
    verify_manifest(directory)
    return (directory / MODEL_FILE).read_text(), f"shipped model {directory.name}"


def _shipped_records(n: int) -> np.ndarray:
    from training.dataset import prepare
    from training.simulate import simulate

    parts, have, seed = [], 0, 100
    while have < n:
        X = prepare(simulate(min(200_000, int((n - have) * 1.05) + 100), seed)).X
        parts.append(X)
        have += X.shape[0]
        seed += 1
    return np.ascontiguousarray(np.vstack(parts)[:n])


def _synthetic(max_depth: int, trees: int = 300, leaves: int = 31) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    X = _random_records(20_000, 0)
    y = (np.nan_to_num(X) @ rng.normal(size=30) + 2 * rng.normal(size=20_000) > 0).astype(float)
    params = {"objective": "binary", "num_leaves": leaves, "max_depth": max_depth, "verbose": -1,
              "num_threads": 2, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=trees)
    return (booster.model_to_string(),
            f"synthetic {trees} trees x {leaves} leaves, 30 features, max_depth {max_depth}")


def _tree_depth(booster: lgb.Booster) -> int:
    def depth(node: dict[str, object]) -> int:
        if "leaf_index" in node:
            return 0
        return 1 + max(depth(node["left_child"]), depth(node["right_child"]))  # type: ignore[arg-type]

    return max(depth(t["tree_structure"]) for t in booster.dump_model()["tree_info"])


def compare_models(rows: int, repeats: int, threads: int, numpy_engine: bool) -> None:
    """Per model size: median rows/s of ours and pred_contrib (interleaved runs), ratio, max |diff|;
    the explainer's engine, plan build time, table memory and first call (numba's load, if used)."""
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {rows:,} records; "
          f"{repeats} interleaved runs each; threads: {threads}")
    print(f"{'model':26} {'depth':>5} {'engine':>6} {'build s':>7} {'tables':>8} {'1st call':>8} "
          f"{'ours rows/s':>11} {'pred_contrib':>12} {'ratio':>6} {'max |diff|':>10} {'load':>4}"
          + (f" {'numpy engine':>12}" if numpy_engine else ""))
    shipped = _shipped()
    models = [(*shipped, "shipped")] if shipped else []
    models += [(*_synthetic(-1, 300, 31), "300 x 31, unlimited depth"),
               (*_synthetic(-1, 500, 63), "500 x 63, unlimited depth")]
    for text, _, name in models:
        _compare_model(text, name, rows, repeats, threads, numpy_engine)


def _compare_model(text: str, name: str, rows: int, repeats: int, threads: int,
                   numpy_engine: bool) -> None:
    t0 = time.perf_counter()
    ours = TreeExplainer.from_model_string(text)
    build = time.perf_counter() - t0
    booster = lgb.Booster(model_str=text)
    X = _shipped_records(rows) if name == "shipped" else _random_records(rows, 1)
    t0 = time.perf_counter()
    ours.contributions(X, n_threads=threads)  # loads the engine (numba: import, cached compile)
    first = time.perf_counter() - t0
    methods: dict[str, Callable[[], np.ndarray]] = {
        "ours": lambda: ours.contributions(X, n_threads=threads),
        "lightgbm": lambda: np.asarray(booster.predict(X, pred_contrib=True, num_threads=threads))}
    if numpy_engine:
        reference = TreeExplainer.from_model_string(text, engine="numpy")
        methods["numpy"] = lambda: reference.contributions(X, n_threads=threads)
    rates: dict[str, list[float]] = {method: [] for method in methods}
    result: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for method, run in methods.items():
            t0 = time.perf_counter()
            result[method] = run()
            rates[method].append(rows / (time.perf_counter() - t0))
    med = {method: float(np.median(r)) for method, r in rates.items()}
    diff = np.abs(result["ours"] - result["lightgbm"]).max()
    print(f"{name[:26]:26} {_tree_depth(booster):5d} {ours.engine:>6} {build:7.1f} "
          f"{ours.table_bytes / 2**20:6.1f}MB {first:8.2f} {med['ours']:11,.0f} "
          f"{med['lightgbm']:12,.0f} {med['ours'] / med['lightgbm']:5.1f}x {diff:10.1e} "
          f"{os.getloadavg()[0]:4.1f}"
          + (f" {med['numpy']:12,.0f}" if numpy_engine else ""), flush=True)


def _random_records(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 30))
    X[rng.random(X.shape) < 0.05] = np.nan
    return X


def _latency(fns: dict[str, Callable[[np.ndarray], object]], rows: np.ndarray,
             blocks: int = 10) -> dict[str, np.ndarray]:
    """Microseconds per single-record call, methods interleaved block by block."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        for r in rows[:20]:
            fn(r[None, :])  # warm up
    per_block = max(1, rows.shape[0] // blocks)
    for b in range(blocks):
        for name, fn in fns.items():
            for r in rows[b * per_block:(b + 1) * per_block]:
                t0 = time.perf_counter_ns()
                fn(r[None, :])
                times[name].append((time.perf_counter_ns() - t0) / 1000.0)
    return {name: np.array(t) for name, t in times.items()}


def _batch(X: np.ndarray, ours: TreeExplainer, booster: lgb.Booster, reference: object,
           threads: int) -> tuple[list[tuple[str, str, str, str]], str]:
    """Table rows for one batch size, and the exactness line (ours against pred_contrib)."""
    n = X.shape[0]
    out_bytes = n * (ours.n_features + 1) * 8
    result: dict[str, np.ndarray] = {}
    runs: list[tuple[str, Callable[[], object]]] = [
        ("ours", lambda: result.__setitem__("ours", ours.contributions(X, n_threads=threads))),
        ("lightgbm", lambda: result.__setitem__(
            "lightgbm", booster.predict(X, pred_contrib=True, num_threads=threads)))]
    if n <= SHAP_MAX_ROWS:
        runs.append(("shap", lambda: reference.shap_values(X)))  # type: ignore[attr-defined]
    rows, rates = [], {}
    for name, run in runs:
        seconds, peak = _measured(run)
        rates[name] = n / seconds
        ratio = "" if name == "ours" else f"ours {rates['ours'] / rates[name]:.1f}x the throughput"
        rows.append((f"{n:,}", name, f"{rates[name]:10,.0f} rows/s  peak +{peak / 2**20:7.1f} MiB "
                     f"({peak / out_bytes:4.2f}x output)", ratio))
    if n > SHAP_MAX_ROWS:
        rows.append((f"{n:,}", "shap", "skipped above 100k", ""))
    diff = np.abs(result["ours"] - result["lightgbm"]).max()
    additivity = np.abs(result["ours"].sum(axis=1) - booster.predict(X, raw_score=True)).max()
    return rows, (f"exactness on {n:,} records: max |ours - pred_contrib| {diff:.2e}, "
                  f"additivity {additivity:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-rows", type=int, default=1_000_000)
    parser.add_argument("--synthetic", action="store_true", help="the synthetic model even if one ships")
    parser.add_argument("--max-depth", type=int, default=-1, help="synthetic model's max_depth")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--single", type=int, default=2000, help="single-record calls per method")
    parser.add_argument("--models", action="store_true", help="ours vs pred_contrib per model size")
    parser.add_argument("--rows", type=int, default=5000, help="records per run (--models)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs (--models)")
    parser.add_argument("--numpy", action="store_true",
                        help="also the numpy engine's rows/s, whatever engine ours picks (--models)")
    args = parser.parse_args()
    if args.models:
        compare_models(args.rows, args.repeats, args.threads, args.numpy)
        return

    shipped = None if args.synthetic else _shipped()
    text, label = shipped or _synthetic(args.max_depth)
    t0 = time.perf_counter()
    ours = TreeExplainer.from_model_string(text)
    build = time.perf_counter() - t0
    booster = lgb.Booster(model_str=text)
    sizes = [s for s in SIZES if s <= args.max_rows]
    largest = max(sizes)
    records = _shipped_records(max(largest, args.single)) if shipped else _random_records(
        max(largest, args.single), 1)
    print(f"model: {label}; {ours.n_features} features; explainer built in {build:.2f} s; "
          f"threads: {args.threads}")

    import shap  # a heavy import, for the baseline only

    reference = shap.TreeExplainer(booster)
    fns: dict[str, Callable[[np.ndarray], object]] = {
        "ours": lambda X: ours.contributions(X, n_threads=args.threads),
        "lightgbm": lambda X: booster.predict(X, pred_contrib=True, num_threads=1),
        "shap": lambda X: reference.shap_values(X),
    }
    table: list[tuple[str, str, str, str]] = []
    single = _latency(fns, records[:args.single])
    p50 = {name: float(np.median(t)) for name, t in single.items()}
    for name, t in single.items():
        table.append(("1", name, f"p50 {p50[name]:8.1f} us  p99 {np.percentile(t, 99):8.1f} us",
                      "" if name == "ours" else f"ours {p50[name] / p50['ours']:.1f}x faster (p50)"))
    exact = ""
    for n in (s for s in sizes if s > 1):
        rows, exact = _batch(records[:n], ours, booster, reference, args.threads)
        table.extend(rows)
    print(f"{'records':>10}  {'method':9} {'figures':60} ratio")
    for row in table:
        print(f"{row[0]:>10}  {row[1]:9} {row[2]:60} {row[3]}")
    print(exact)


if __name__ == "__main__":
    main()
