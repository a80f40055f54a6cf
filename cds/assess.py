"""The data flow of one assessment: validate -> intake rows -> model -> explain + safety.

``assess(record)`` is what every front end calls; it returns an :class:`~cds.assessment.Assessment`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .assessment import Assessment, ComplaintResult
from .explain import candidate_procedures, factors, missing_items, next_best
from .features import ROWS
from .intake import rows_from_record
from .model import Model, load_model
from .safety import not_applicable, population_warnings, red_flags
from .validate import validate_record

_COMPLAINT_LABELS = dict(zip(ROWS.allowed, ROWS.allowed_labels, strict=True))
_default: Model | None = None
_default_lock = threading.Lock()


def default_model() -> Model:
    """The production model, loaded once per process on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = load_model("production")
        return _default


def assess(record: Mapping[str, Any], model: Model | None = None) -> Assessment:
    """Assess one patient record (a dict per the contract's JSON Schema).

    Raises :class:`~cds.errors.InvalidRecord` naming every bad field and rule.
    """
    clean = validate_record(record)
    model = model or default_model()
    complaints, rows = rows_from_record(clean)
    contributions = model.contributions(rows)
    base = contributions[:, -1]
    raw = contributions.sum(axis=1)
    probability = model.probability(raw)
    missing = {c: missing_items(clean, c) for c in dict.fromkeys(complaints)}
    nexts = next_best(model, rows, probability,
                      [candidate_procedures(missing[c]) for c in complaints])
    flags = red_flags(clean)
    population = model.metadata.get("population", {})
    warnings = not_applicable(clean) + population_warnings(rows[0], population)
    results = [
        ComplaintResult(
            complaint=c, complaint_label=_COMPLAINT_LABELS[c],
            probability=round(float(probability[i]), 4), band=model.band(float(probability[i])),
            raw_score=float(raw[i]), base_value=float(base[i]),
            factors=factors(rows[i], contributions[i]), missing=missing[c],
            next_best_assessment=nexts[i])
        for i, c in enumerate(complaints)
    ]
    return Assessment(
        model={"id": model.id, "version": model.version, "trained_on": model.trained_on},
        action="refer" if flags else "assess", red_flags=flags, warnings=warnings,
        results=results)
