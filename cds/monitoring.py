"""Monitoring statistics: is the model still seeing the patients it was built for, and right?

One implementation for ``cds monitor`` (:mod:`training.monitor`, by month over a store or file)
and the service's ``/metrics`` gauges (:mod:`service.http.metrics`, over the store's recent rows):

* **input drift**, per model column: the population stability index (PSI) of the current rows
  against the training distribution, over the reference's deciles for numbers and over the
  values for categories and yes/no, "not recorded" being a bin of its own (and values the
  reference never saw one more). ``PSI = sum((a - e) ln(a / e))`` with shares floored at
  1e-4. Bounds: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major shift (alarm)
  (Siddiqi, Credit Risk Scorecards, Wiley 2006; Yurdakul & Naranjo 2020, "Statistical
  properties of the population stability index", J Risk Model Validation 14(4));
* **out-of-population rate**: the share of rows with a value outside the training population
  (the model's ``metadata["population"]``, as :func:`cds.safety.population_warnings` reads it);
* **prediction distribution**: mean and quartiles of the calibrated probability;
* **observed vs expected**, where outcomes are recorded: the outcome rate with its Wilson 95%
  CI beside the mean predicted probability; an alarm when the expected rate lies outside the
  observed rate's CI and differs from it by more than :data:`CALIBRATION_ALARM_PP` points.

The training distribution (the reference) is ONE file shipped with the model artefact:
``reference.json`` (:data:`REFERENCE_FILE`), listed in its SHA-256 manifest, written at training
time by :func:`reference_distribution` over the training rows (red flags excluded). A model
without one has no reference: ``cds monitor`` then needs ``--reference`` (or falls back to its
first month) and the service exports no PSI gauge.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .features import MODEL_COLUMNS, ROWS, column_feature
from .intake import _CODES, _RECORDED, _ROW_COLUMN, encode_value, model_matrix
from .safety import _bounds

PSI_MODERATE, PSI_ALARM = 0.1, 0.25  # Siddiqi 2006; Yurdakul & Naranjo 2020 (module docstring)
CALIBRATION_ALARM_PP = 5.0  # percentage points between observed and expected (this project's bound)
REFERENCE_FILE = "reference.json"
_FLOOR = 1e-4


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion ``k / n`` (Wilson 1927, JASA 22:209)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def categorical(column: str) -> bool:
    return column_feature(column).kind in ("category", "boolean")


def reference_column(values: np.ndarray, *, is_categorical: bool) -> dict[str, Any]:
    """One column's reference: its bins (decile edges, or the values seen) and their shares,
    the first share being "not recorded" and, for categories, the last "a value never seen"."""
    values = np.asarray(values, dtype=float)
    present = values[~np.isnan(values)]
    if is_categorical:
        categories = np.unique(present)
        counts = [int((~np.isnan(values)).size - present.size)]
        counts += [int((present == c).sum()) for c in categories] + [0]
        out: dict[str, Any] = {"categories": categories.tolist()}
    else:
        edges = (np.unique(np.percentile(present, np.linspace(10, 90, 9))) if present.size
                 else np.array([]))
        binned = np.digitize(present, edges)
        counts = [int(values.size - present.size)]
        counts += [int((binned == b).sum()) for b in range(len(edges) + 1)]
        out = {"edges": edges.tolist()}
    total = max(sum(counts), 1)
    out["shares"] = [c / total for c in counts]
    return out


def _shares(values: np.ndarray, ref: Mapping[str, Any]) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    present = values[~missing]
    if "categories" in ref:
        categories = np.asarray(ref["categories"], dtype=float)
        known = np.isin(present, categories)
        counts = ([int(missing.sum())] + [int((present == c).sum()) for c in categories]
                  + [int((~known).sum())])
    else:
        edges = np.asarray(ref["edges"], dtype=float)
        binned = np.digitize(present, edges)
        counts = [int(missing.sum())] + [int((binned == b).sum()) for b in range(len(edges) + 1)]
    total = max(sum(counts), 1)
    return np.asarray(counts, float) / total


def psi_against(ref: Mapping[str, Any], current: np.ndarray) -> float:
    """PSI of ``current`` against one column's reference (:func:`reference_column`)."""
    e = np.maximum(np.asarray(ref["shares"], float), _FLOOR)
    a = np.maximum(_shares(current, ref), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference: np.ndarray, current: np.ndarray, *, categorical: bool) -> float:
    """PSI of one column of ``current`` against the raw ``reference`` values."""
    return psi_against(reference_column(reference, is_categorical=categorical), current)


def reference_distribution(X: np.ndarray, source: str = "") -> dict[str, Any]:
    """The reference of every model column of the rows ``X`` (what :data:`REFERENCE_FILE` holds)."""
    return {"source": source, "rows": len(X),
            "columns": {c: reference_column(X[:, j], is_categorical=categorical(c))
                        for j, c in enumerate(MODEL_COLUMNS)}}


def write_reference(directory: Path, X: np.ndarray, source: str = "") -> Path:
    """Write :data:`REFERENCE_FILE` into an artefact directory (seal the manifest after)."""
    path = directory / REFERENCE_FILE
    path.write_text(json.dumps(reference_distribution(X, source), indent=1) + "\n")
    return path


def read_reference(model_path: Path) -> dict[str, Any] | None:
    """A loaded model's reference distribution, or ``None`` when its artefact ships none.

    Read only when the manifest lists it (the manifest was verified when the model loaded)."""
    try:
        listed = json.loads((model_path / "manifest.json").read_text())["files"]
        if REFERENCE_FILE not in listed:
            return None
        reference: dict[str, Any] = json.loads((model_path / REFERENCE_FILE).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    columns = reference.get("columns") if isinstance(reference, dict) else None
    if not isinstance(columns, dict) or set(columns) != set(MODEL_COLUMNS):
        return None  # another contract's columns: no drift against it
    return reference


def drift(reference: Mapping[str, Any], X: np.ndarray) -> dict[str, float]:
    """PSI per model column of the rows ``X`` against a reference (rounded to 4 places)."""
    columns = reference["columns"]
    return {c: round(psi_against(columns[c], X[:, j]), 4) for j, c in enumerate(MODEL_COLUMNS)}


def out_of_population(X: np.ndarray, population: Mapping[str, list[float]]) -> np.ndarray:
    """Per row: does a value lie outside the training population (NaN never does)?"""
    low, high = _bounds(population)
    with np.errstate(invalid="ignore"):
        return np.asarray((np.less(X, low) | np.greater(X, high)).any(axis=1))


def prediction_summary(p: np.ndarray) -> dict[str, Any]:
    return {"mean": round(float(p.mean()), 4),
            "quartiles": [round(float(q), 4) for q in np.percentile(p, [25, 50, 75])]}


def observed_expected(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Observed outcome rate (Wilson 95% CI) vs mean prediction over the labelled rows of ``y``
    (NaN: no outcome yet), and the calibration alarm (module docstring)."""
    labelled = ~np.isnan(y)
    k, n = int(y[labelled].sum()), int(labelled.sum())
    if not n:
        return {"outcomes": 0, "observed": None, "observed_ci95": None, "expected": None,
                "calibration_alarm": False}
    lo, hi = wilson(k, n)
    observed, expected = k / n, float(p[labelled].mean())
    alarm = bool(not lo <= expected <= hi and abs(observed - expected) * 100 > CALIBRATION_ALARM_PP)
    return {"outcomes": n, "observed": round(observed, 4),
            "observed_ci95": [round(lo, 4), round(hi, 4)], "expected": round(expected, 4),
            "calibration_alarm": alarm}


def rows_from_records(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], np.ndarray]:
    """Validated records -> (complaint of each row, model rows), one row per complaint, in
    order: :func:`cds.intake.rows_from_record` of each, stacked, but assembled in one pass (the
    model matrix once for all rows, not once per record: monitoring reads thousands)."""
    complaints: list[str] = []
    owner: list[int] = []
    for i, record in enumerate(records):
        for c in record[ROWS.name]:
            complaints.append(c)
            owner.append(i)
    n, index = len(complaints), np.asarray(owner, dtype=int)
    raw: dict[str, Any] = {_ROW_COLUMN: np.array([_CODES[ROWS.name][c] for c in complaints],
                                                 dtype=float)}
    for name, f in _RECORDED.items():
        values = np.array([encode_value(f, r[name]) if name in r else np.nan for r in records],
                          dtype=float)
        if not np.isnan(values).all():
            raw[name] = values[index]
    return complaints, model_matrix(raw, n)


def figures(X: np.ndarray, p: np.ndarray, y: np.ndarray, *,
            reference: Mapping[str, Any] | None,
            population: Mapping[str, list[float]]) -> dict[str, Any]:
    """Every figure of one period: rows, out-of-population rate, predictions, PSI (when there is
    a reference), observed vs expected."""
    psi_by = drift(reference, X) if reference is not None else {}
    return {"rows": len(X),
            "out_of_population_rate": round(float(out_of_population(X, population).mean()), 4),
            "prediction": prediction_summary(p),
            "psi": psi_by, "psi_alarms": sorted(c for c, v in psi_by.items() if v > PSI_ALARM),
            **observed_expected(y, p)}
