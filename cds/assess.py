"""The data flow of one assessment: validate -> intake rows -> model -> explain + safety.

``assess(record)`` is what every front end calls; it returns an :class:`~cds.assessment.Assessment`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .assessment import Assessment, ComplaintResult
from .contract import PROFILE_FIELD
from .explain import candidate_procedures, explain, missing_items, next_best
from .features import BY_NAME, MODEL_COLUMNS, ROWS, column_feature
from .intake import rows_from_record
from .model import Model, load_model
from .safety import (
    not_applicable,
    population_warnings,
    red_flags,
    referral,
    screen_incomplete,
)
from .validate import validate_record

_COMPLAINT_LABELS = dict(zip(ROWS.allowed, ROWS.allowed_labels, strict=True))
_NOT_APPLYING: dict[tuple[Any, str], tuple[frozenset[str], frozenset[str]]] = {}
_NONE: Mapping[str, Any] = {}


def _not_applying(profile: Any, complaint: str) -> tuple[frozenset[str], frozenset[str]]:
    """(fields, model columns) that do not apply to ``complaint`` for a patient of this activity
    profile: what :meth:`~cds.contract.Feature.applies_to` answers, worked out once per pair."""
    key = (profile, complaint)
    found = _NOT_APPLYING.get(key)
    if found is None:
        record = {PROFILE_FIELD: profile}
        found = (frozenset(name for name, f in BY_NAME.items()
                           if not f.applies_to(record, complaint)),
                 frozenset(col for col in MODEL_COLUMNS
                           if not column_feature(col).applies_to(record, complaint)))
        if len(_NOT_APPLYING) < 64:  # profiles x complaints; a stray profile is not kept
            _NOT_APPLYING[key] = found
    return found
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

    A red flag answered yes gives ``action="refer"`` and no result at all: the model is not run.
    Raises :class:`~cds.errors.InvalidRecord` naming every bad field and rule.
    """
    clean = validate_record(record)
    model = model or default_model()
    info = {"id": model.id, "version": model.version, "trained_on": model.trained_on}
    flags = red_flags(clean)
    if flags:
        return Assessment(model=info, action="refer", red_flags=flags,
                          warnings=screen_incomplete(clean, refer=True), results=[],
                          referral=referral(flags))
    screen = screen_incomplete(clean)
    complaints, rows = rows_from_record(clean)
    contributions = model.contributions(rows)
    raw = contributions.sum(axis=1).tolist()
    probability = model.probabilities(raw)
    missing = {c: missing_items(clean, c) for c in dict.fromkeys(complaints)}
    nexts = next_best(model, rows, probability,
                      [candidate_procedures(missing[c]) for c in complaints])
    set_aside = not_applicable(clean)
    population = model.metadata.get("population", _NONE)
    method = model.metadata.get("population_method")
    outside: dict[str, dict[str, str]] = {}  # each row: a value set aside in one may count in another
    for row in rows:
        for w in population_warnings(row, population, method):
            outside.setdefault(w["feature"], w)
    warnings = screen + set_aside + list(outside.values())
    results = []
    profile = clean.get(PROFILE_FIELD)
    for i, c in enumerate(complaints):
        not_here, elsewhere = _not_applying(profile, c)
        aside = {f for f in not_here  # a "no" set aside is set aside silently
                 if clean.get(f, False) is not False}
        why = explain(rows[i], contributions[i], model.probability_of, aside, elsewhere)
        results.append(ComplaintResult(
            complaint=c, complaint_label=_COMPLAINT_LABELS[c],
            probability=round(probability[i], 4), band=model.band(probability[i]),
            raw_score=raw[i], base_value=why.base_value,
            starting_point=why.starting_point, starting_probability=why.starting_probability,
            factors=why.factors, not_recorded=why.not_recorded, missing=missing[c],
            next_best_assessment=nexts[i]))
    return Assessment(model=info, action="assess", red_flags=[], warnings=warnings,
                      results=results)
