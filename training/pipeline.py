"""``cds train``: data file in, sealed artefact out, with honest figures in its metadata."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import UserError
from cds.features import CATEGORICAL_COLUMNS, MODEL_COLUMNS
from cds.model import load_model

from .artefact import TRAINED_ON_SIMULATED, write_artefact
from .bands import choose_bands
from .curves import evaluation_figures
from .dataset import COMPLAINT, Dataset, load, require_outcomes
from .evaluate import by_group, logistic_baseline, metrics
from .fit import fit, split_indices
from .samplesize import check_development
from .tune import Budget, candidates
from .validation import validation_lines

DEFAULT_SEED = 20261124


def complaint_strata(ds: Dataset) -> np.ndarray:
    codes = ds.X[:, MODEL_COLUMNS.index(COMPLAINT)]
    strata: np.ndarray = np.nan_to_num(codes, nan=-1).astype(int) + 1
    return strata


def evaluate_model(directory: Path, train: Dataset, test: Dataset, *, description: str
                   ) -> dict[str, Any]:
    """Figures of a written model on ``test`` beside the ceiling and a logistic baseline."""
    model = load_model(directory)
    p = model.probability(model.predict_raw(test.X))
    out: dict[str, Any] = {"evaluation_data": description, "model": metrics(test.y, p)}
    if "p_true" in test.frame.columns:
        out["ceiling"] = metrics(test.y, test.frame["p_true"].to_numpy(float))
    baseline = logistic_baseline(train.X, train.y)
    out["logistic_baseline"] = metrics(test.y, baseline.predict_proba(test.X)[:, 1])
    if "care_setting" in test.frame.columns:
        settings = test.frame["care_setting"].astype(str).to_numpy()
        out["by_care_setting"] = by_group(test.y, p, settings)
        if "p_true" in test.frame.columns:
            out["ceiling_by_care_setting"] = by_group(
                test.y, test.frame["p_true"].to_numpy(float), settings)
    out["by_complaint"] = by_group(test.y, p, test.frame[COMPLAINT].astype(str).to_numpy())
    return out


def trained_on(ds: Dataset) -> str:
    """What the model says it learned from: the simulator, or local outcomes from a source."""
    return TRAINED_ON_SIMULATED if ds.simulated else f"local outcomes ({ds.description})"


def internal_holdout(ds: Dataset, seed: int) -> Dataset:
    """The validation part of the training split (early stopping only; not the calibration part)."""
    _, valid, _ = split_indices(ds.y, complaint_strata(ds), seed)
    return Dataset(ds.X[valid], ds.y[valid], ds.frame.iloc[valid].reset_index(drop=True),
                   description=f"internal validation split of the training data ({len(valid)} rows; "
                               "also used for early stopping, so optimistic)",
                   sha256=ds.sha256)


def train(data: str | Path, out: str | Path, *, version: str | None = None,
          eval_data: str | Path | None = None, seed: int = DEFAULT_SEED,
          num_threads: int = 0, quarantine: str | Path | None = None,
          progress: Callable[[str], None] | None = None, reps: int = 200,
          tune: Budget | None = None, engine: str = "local", scheduler: str | None = None,
          anticipated_r2: float | None = None, accept_small_sample: bool = False,
          columns: str | Path | None = None) -> Path:
    """Read and validate, check the sample size, fit, write the artefact, evaluate, choose the
    bands, reseal.

    Before fitting, the outcomes are checked against the minimum sample size for a model of
    this size (:mod:`training.samplesize`, Riley et al. 2020; ``anticipated_r2`` is the
    Cox-Snell R² it assumes): too few raise :class:`~training.samplesize.TooFewOutcomes`, with
    the numbers and what the data can support instead, unless ``accept_small_sample`` (then the
    shortfall is recorded in the metadata).

    Figures come from ``eval_data`` when given, else from the internal validation split (and
    say so); so do the band thresholds (:mod:`training.bands`). ``tune`` runs the bounded
    search of :mod:`training.tune`; ``engine="dask"`` fits on a Dask cluster (``scheduler``
    address, or a local cluster). ``progress`` receives one line per step (the validation
    report and each candidate included).

    Long: a third of it is this docstring; the body is the steps above in order, one call
    each, sharing the dataset, the metadata and the progress line between them.
    """
    say = progress or (lambda _: None)
    out = Path(out)
    version = version or out.name
    say(f"reading and validating {data}")
    ds = load(data, quarantine=quarantine, columns=columns)
    for line in validation_lines(ds.validation):
        say(line)
    require_outcomes(ds, "training")
    say("checking the sample size (Riley et al. 2020)")
    need = check_development(ds.y, what=ds.description, r2_cox_snell=anticipated_r2,
                             accept_small=accept_small_sample)
    say(f"  {len(ds.y)} rows, {int(ds.y.sum())} events; the minimum for {need.parameters} "
        f"candidate parameters is {need.n} rows ({need.events} events)")
    if len(ds.y) < need.n:
        say(f"warning: {len(ds.y)} rows, {int(ds.y.sum())} events, below the minimum of {need.n} "
            f"rows ({need.events} events); trained anyway (--accept-small-sample, recorded)")
    search = candidates(tune, seed) if tune else None
    say(f"fitting on {len(ds.y)} rows ({engine}"
        + (f", tuning: up to {tune.trials} trials" + (f" or {tune.seconds:g} s" if tune.seconds else "")
           if tune else "") + ")")
    if engine == "dask":
        from .distributed import dask_client, fit_dask

        with dask_client(scheduler) as client:
            fitted = fit_dask(ds.X, ds.y, complaint_strata(ds), client=client, seed=seed,
                              candidates=search, progress=say)
    elif engine == "local":
        fitted = fit(ds.X, ds.y, complaint_strata(ds), seed=seed, num_threads=num_threads,
                     candidates=search, deadline=tune.deadline() if tune else None,
                     progress=say)
    else:
        raise UserError(f"engine must be 'local' or 'dask', not {engine!r}")
    training_data = {**ds.provenance, "categorical_columns": list(CATEGORICAL_COLUMNS),
                     "sample_size": {**need.to_dict(), "rows": len(ds.y),
                                     "events_observed": int(ds.y.sum()),
                                     "below_minimum_accepted": len(ds.y) < need.n}}
    common: dict[str, Any] = {"version": version, "X_train": ds.X, "training_data": training_data,
                              "seed": seed, "trained_on": trained_on(ds),
                              "extra": {"engine": engine,
                                        "tuning": tune.describe() if tune else None}}
    write_artefact(out, fitted, metrics={}, **common)
    if eval_data is not None:
        say(f"evaluating on {eval_data}")
        test = load(eval_data, columns=columns)
    else:
        say("no --eval-data: evaluating on the internal validation split")
        test = internal_holdout(ds, seed)
    metrics_ = evaluate_model(out, ds, test, description=test.description)
    model = load_model(out)
    p = model.probability(model.predict_raw(test.X))
    evaluation = evaluation_figures(test.y, p, test.frame, reps=reps, seed=seed)
    bands, band_selection = choose_bands(test.y, p, test.description)
    say(f"bands by net benefit on held-out data: moderate from {bands['moderate_from']:.0%}, "
        f"high from {bands['high_from']:.0%}")
    common["extra"].update(bands=bands, band_selection=band_selection)
    write_artefact(out, fitted, metrics=metrics_, evaluation=evaluation,
                   evaluation_description=test.description, **common)
    return out
