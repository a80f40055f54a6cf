"""``cds train``: data file in, sealed artefact out, with honest figures in its metadata."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cds.features import CATEGORICAL_COLUMNS, MODEL_COLUMNS
from cds.model import load_model

from .artefact import TRAINED_ON_SIMULATED, write_artefact
from .dataset import COMPLAINT, Dataset, load
from .evaluate import by_group, logistic_baseline, metrics
from .fit import fit
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


def train(data: str | Path, out: str | Path, *, version: str | None = None,
          eval_data: str | Path | None = None, seed: int = DEFAULT_SEED,
          num_threads: int = 0, quarantine: str | Path | None = None,
          progress: Callable[[str], None] | None = None) -> Path:
    """Read and validate, fit, write the artefact, evaluate on ``eval_data``, reseal with figures.

    ``progress`` receives one line per step (the validation report included).
    """
    say = progress or (lambda _: None)
    out = Path(out)
    version = version or out.name
    say(f"reading and validating {data}")
    ds = load(data, quarantine=quarantine)
    for line in validation_lines(ds.validation):
        say(line)
    say(f"fitting on {len(ds.y)} rows")
    fitted = fit(ds.X, ds.y, complaint_strata(ds), seed=seed, num_threads=num_threads)
    training_data = {**ds.provenance, "categorical_columns": list(CATEGORICAL_COLUMNS)}
    write_artefact(out, fitted, version=version, X_train=ds.X, training_data=training_data,
                   metrics={}, seed=seed, trained_on=trained_on(ds))
    if eval_data is not None:
        say(f"evaluating on {eval_data}")
        test = load(eval_data)
        figures = evaluate_model(out, ds, test, description=test.description)
        write_artefact(out, fitted, version=version, X_train=ds.X, training_data=training_data,
                       metrics=figures, seed=seed, trained_on=trained_on(ds))
    return out
