"""``--engine dask``: train with ``lightgbm.dask`` across a Dask cluster.

Without a scheduler address a :class:`distributed.LocalCluster` is started (and stopped) here.
The validated model matrix is split exactly as on one machine (:func:`training.fit.split_indices`)
and the training part is spread over the workers as a Dask array; LightGBM trains data-parallel.

``lightgbm.dask`` has no early stopping, so each candidate grows ``max_rounds`` trees and the
validation loss is then computed for every prefix of trees on the client (adding the trees' raw
scores one tree at a time, linear in the number of trees); the model is truncated at the best
prefix, exactly what early stopping would keep if it had waited to the end. Selection and
calibration are then the single-machine code (:func:`training.fit.finish`). Distributed
histograms differ slightly from single-machine ones, so the trees are close, not identical
(tests compare the two paths' predictions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from cds.features import CATEGORICAL_COLUMNS, MODEL_COLUMNS

from .fit import candidate_params, finish, split_indices

LOCAL_WORKERS = 2


@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int = LOCAL_WORKERS,
                processes: bool = False) -> Iterator[Any]:
    """A client of ``scheduler``, or of a LocalCluster started for the duration.

    The local cluster's worker processes keep glibc's own malloc tuning: Dask's nanny sets
    ``MALLOC_TRIM_THRESHOLD_=65536`` by default (to hand memory back to the OS), and any fixed
    value also stops glibc from raising its mmap threshold, so every large array of a partition
    is a fresh mmap: measured on a 100k-row partition of ``cds score``, 5x the page faults and
    ~40 % more CPU than the same call in one process (issue 16, bench/score.py).
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:  # type: ignore[no-untyped-call]
            yield client
        return
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), \
            LocalCluster(n_workers=workers, threads_per_worker=1,  # type: ignore[no-untyped-call]
                         processes=processes, dashboard_address=None) as cluster, \
            Client(cluster) as client:  # type: ignore[no-untyped-call]
        yield client


def logloss_by_trees(booster: Any, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Binary log-loss of every prefix of the booster's trees (index i: the first i+1 trees)."""
    n_trees = booster.num_trees()
    raw = np.zeros(len(y))
    losses = np.empty(n_trees)
    for k in range(n_trees):
        raw += booster.predict(X, raw_score=True, start_iteration=k, num_iteration=1)
        p = np.clip(1 / (1 + np.exp(-raw)), 1e-12, 1 - 1e-12)
        losses[k] = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    return losses


def fit_dask(X: np.ndarray, y: np.ndarray, strata: np.ndarray, *, client: Any,
             seed: int = 20261124, leaves: tuple[int, ...] = (4, 8, 16),
             tolerance: float = 0.0005, max_rounds: int = 400,
             candidates: list[dict[str, Any]] | None = None,
             progress: Callable[[str], None] | None = None) -> Any:
    """The dask twin of :func:`training.fit.fit` (returns a :class:`training.fit.Fitted`)."""
    import dask.array as da
    import lightgbm as lgb

    split = split_indices(y, strata, seed)
    train, valid, _ = split
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    chunk = max(1, -(-len(train) // workers))
    dX = da.from_array(X[train], chunks=(chunk, X.shape[1]))  # type: ignore[no-untyped-call]
    dy = da.from_array(y[train], chunks=(chunk,))  # type: ignore[no-untyped-call]
    categorical = [MODEL_COLUMNS.index(c) for c in CATEGORICAL_COLUMNS]
    fitted: list[dict[str, Any]] = []
    overrides = candidates or [{"num_leaves": n} for n in leaves]
    for i, override in enumerate(overrides, 1):
        params = candidate_params(override, seed=seed, num_threads=1)
        lgb_params = {k: v for k, v in params.items() if k not in ("num_threads", "metric")}
        model = lgb.DaskLGBMClassifier(client=client, n_estimators=max_rounds, **lgb_params)
        model.fit(dX, dy, feature_name=list(MODEL_COLUMNS), categorical_feature=categorical)
        booster = model.booster_
        losses = logloss_by_trees(booster, X[valid], y[valid])
        best = int(np.argmin(losses))
        fitted.append({"trees": best + 1, "valid_logloss": float(losses[best]),
                       "booster": booster, "params": params})
        if progress:
            progress(f"  dask candidate {i}/{len(overrides)} on {workers} workers: "
                     + ", ".join(f"{k}={v}" for k, v in override.items())
                     + f" -> {best + 1} trees, valid log-loss {losses[best]:.5f}")
    return finish(fitted, X, y, split, tolerance)
