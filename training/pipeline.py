"""``cds train``: data file in, sealed artefact out, with honest figures in its metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cds.features import CATEGORICAL_COLUMNS, MODEL_COLUMNS
from cds.model import load_model

from .artefact import write_artefact
from .dataset import COMPLAINT, Dataset, file_sha256, prepare, read_frame
from .evaluate import by_group, logistic_baseline, metrics
from .fit import fit

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


def train(data: str | Path, out: str | Path, *, version: str | None = None,
          eval_data: str | Path | None = None, seed: int = DEFAULT_SEED,
          num_threads: int = 0) -> Path:
    """Read, fit, write the artefact, evaluate on ``eval_data``, reseal with the figures."""
    out = Path(out)
    version = version or out.name
    frame = read_frame(data)
    ds = prepare(frame)
    fitted = fit(ds.X, ds.y, complaint_strata(ds), seed=seed, num_threads=num_threads)
    training_data = {"file": Path(data).name, "sha256": file_sha256(data), "rows": len(ds.y),
                     "excluded": ds.excluded, "prevalence": round(float(ds.y.mean()), 4),
                     "categorical_columns": list(CATEGORICAL_COLUMNS)}
    write_artefact(out, fitted, version=version, X_train=ds.X, training_data=training_data,
                   metrics={}, seed=seed)
    if eval_data is not None:
        test = prepare(read_frame(eval_data))
        description = f"{Path(eval_data).name} (sha256 {file_sha256(eval_data)[:12]}, " \
                      f"{len(test.y)} rows)"
        figures = evaluate_model(out, ds, test, description=description)
        write_artefact(out, fitted, version=version, X_train=ds.X, training_data=training_data,
                       metrics=figures, seed=seed)
    return out
