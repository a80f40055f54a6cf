"""Write a model artefact and keep the registry of aliases.

``models/gmed-driver/<version>/``: ``model.txt`` (LightGBM native text), ``calibration.json``,
``metadata.json``, ``MODEL_CARD.md``, ``reference.json`` (the training distribution drift is
measured against: :mod:`cds.monitoring`) and ``manifest.json`` (SHA-256 of each, written last).
``models/registry.json`` maps aliases (``production``, ``candidate``) to versions.
"""

from __future__ import annotations

import json
import math
import platform
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from cds.explain import PROCEDURE_COLUMNS
from cds.facts import FACTS_FILE, build_facts
from cds.features import MODEL_COLUMNS, ROWS, column_feature, contract_hash
from cds.model import MODEL_FILE, MODEL_ID, sha256_file
from cds.monitoring import write_reference
from cds.treeshap import TreeExplainer

from .fit import Fitted
from .model_card import render_model_card

# Bands before the held-out evaluation chooses them (training.bands, by net benefit): the
# threshold probabilities of the two decisions they stand for, examine the hip (20%) and offer a
# hip-focused programme first-line (40%).
BANDS = {"moderate_from": 0.20, "high_from": 0.40}
TRAINED_ON_SIMULATED = ("simulated cohort (structural causal model from published priors); "
                        "not patient outcomes")
EFFECT_ROWS = 20_000
MIN_EFFECT_ROWS = 50
LIBRARIES = ("lightgbm", "numpy", "scikit-learn", "pandas")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


POPULATION_METHOD = "min-max"
"""How ``metadata["population"]`` was measured: the training support, smallest to largest value.

Models written before it (0.1.0) stored the 0.5th-99.5th percentiles and have no
``population_method``; :func:`cds.safety.population_warnings` reads both."""


def population_ranges(X: np.ndarray) -> dict[str, list[float]]:
    """The training support of each numeric model column: its smallest and largest value.

    Only what lies outside the values the model was trained on is extrapolation; a tail that is
    rare but trained on (a 38% side-to-side deficit) is not.
    """
    out = {}
    for j, col in enumerate(MODEL_COLUMNS):
        if column_feature(col).kind not in ("number", "integer"):
            continue
        values = X[:, j][~np.isnan(X[:, j])]
        if len(values):
            # outward to 4 decimals, so the smallest and largest trained values stay inside
            out[col] = [math.floor(float(values.min()) * 1e4) / 1e4,
                        math.ceil(float(values.max()) * 1e4) / 1e4]
    return out


def procedure_effects(fitted: Fitted, X: np.ndarray, seed: int) -> dict[str, dict[str, Any]]:
    """Per procedure and complaint, the mean |change of the raw score| its result makes.

    Exact TreeSHAP of the fitted model on (a sample of) the training rows: for the rows where
    the procedure was recorded, the absolute sum of its columns' contributions, averaged by
    complaint. :func:`cds.explain.next_best` turns it into an expected change of probability.
    """
    rng = np.random.default_rng(seed)
    rows = X if len(X) <= EFFECT_ROWS else X[rng.choice(len(X), EFFECT_ROWS, replace=False)]
    explainer = TreeExplainer.from_model_string(fitted.booster.model_to_string())
    contributions = explainer.contributions(rows)
    complaint = rows[:, MODEL_COLUMNS.index(ROWS.row_column or "complaint")]
    out = {}
    for procedure, cols in PROCEDURE_COLUMNS.items():
        idx = np.array([MODEL_COLUMNS.index(c) for c in cols])
        recorded = ~np.isnan(rows[:, idx]).any(axis=1)
        effect = np.abs(contributions[:, idx].sum(axis=1))
        by_complaint = {}
        for code, name in enumerate(ROWS.allowed):
            mask = recorded & (complaint == code)
            if mask.sum() >= MIN_EFFECT_ROWS:
                by_complaint[name] = round(float(effect[mask].mean()), 4)
        if by_complaint:
            out[procedure] = {"columns": cols, "mean_abs_log_odds": by_complaint}
    return out


def write_artefact(directory: Path, fitted: Fitted, *, version: str, X_train: np.ndarray,
                   training_data: dict[str, Any], metrics: dict[str, Any], seed: int,
                   trained_on: str = TRAINED_ON_SIMULATED,
                   evaluation: dict[str, Any] | None = None, evaluation_description: str = "",
                   extra: dict[str, Any] | None = None) -> Path:
    """Write every file, then the manifest that seals them.

    ``evaluation`` (figures of :func:`training.curves.evaluation_figures` on held-out data) goes
    into ``model_facts.json`` and the card; ``extra`` adds metadata keys (``tuning``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_text(fitted.booster.model_to_string())
    (directory / "calibration.json").write_text(
        json.dumps({"method": "platt", **fitted.calibration}, indent=2) + "\n")
    metadata = {
        "id": MODEL_ID,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "trained_on": trained_on,
        "contract_hash": contract_hash(),
        "columns": list(MODEL_COLUMNS),
        "training_data": training_data,
        "libraries": library_versions(),
        "seed": seed,
        "params": {k: v for k, v in fitted.params.items() if k != "monotone_constraints"},
        "trees": fitted.booster.num_trees(),
        "size_selection": fitted.selection,
        "split_sizes": fitted.split_sizes,
        "bands": BANDS,
        "metrics": metrics,
        "population": population_ranges(X_train),
        "population_method": POPULATION_METHOD,
        "procedure_effects": procedure_effects(fitted, X_train, seed),
        **(extra or {}),
    }
    write_reference(directory, X_train, str(training_data.get("source", "")))  # drift baseline
    return write_documents(directory, metadata, evaluation, evaluation_description)


def write_documents(directory: Path, metadata: dict[str, Any], evaluation: dict[str, Any] | None,
                    evaluation_description: str = "") -> Path:
    """``metadata.json``, ``model_facts.json`` and ``MODEL_CARD.md`` from one set of facts; seal."""
    facts = build_facts(metadata, evaluation, evaluation_description)
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (directory / FACTS_FILE).write_text(json.dumps(facts, indent=2) + "\n")
    (directory / "MODEL_CARD.md").write_text(render_model_card(metadata, facts))
    seal(directory)
    return directory


def seal(directory: Path) -> None:
    """(Re)write ``manifest.json`` with the SHA-256 of every other file."""
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir())
             if p.is_file() and p.name != "manifest.json"}
    (directory / "manifest.json").write_text(json.dumps({"files": files}, indent=2) + "\n")
