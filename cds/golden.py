"""Golden records: a quick behavioural check of a loaded model before it is put into service.

A hot reload (or a promotion) must not swap in a model that loads but misbehaves. The records
are derived from the contract, so they exist wherever the code does: for each complaint an
intake-only record, and a full record with every finding at the middle of its reference range
(or of its valid range); plus one record with a red flag. :func:`check_model` returns the
problems found (empty means fit to serve):

* every record is assessed without error, every probability is finite and within (0, 1);
* contributions plus base value equal the raw score (the explanation is exact);
* the same rows give the same raw scores twice (no state, no threads changing results);
* the red-flag record is routed to ``refer``, with no estimate;
* each explanation (starting point, factors, the not-recorded line) adds up to the raw score.

Imports only the core (no pandas, no training libraries): the service calls it before it serves
a model, so it lives in the core (the service never imports training).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .assess import assess
from .features import COMPLAINTS, RED_FLAGS, Feature, record_fields
from .intake import rows_from_record
from .model import Model

_REFERENCE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:-|to)\s*(-?\d+(?:\.\d+)?)\s*$")


def _middle(f: Feature) -> Any:
    if f.kind == "boolean":
        return False
    if f.kind == "category":
        return f.allowed[0]
    m = _REFERENCE.match(f.reference or "")
    lo, hi = (float(m.group(1)), float(m.group(2))) if m else (f.minimum or 0.0, f.maximum or 0.0)
    value = (lo + hi) / 2
    return round(value) if f.kind == "integer" else round(value, 2)


def golden_records() -> list[dict[str, Any]]:
    """The records a model is checked on (see the module docstring)."""
    records: list[dict[str, Any]] = []
    base = {"age_years": 35, "sex": "female", "activity_profile": "runner", "side": "left"}
    for complaint in COMPLAINTS:
        records.append({**base, "complaints": [complaint], "pain_nrs": 5,
                        "pain_worse_single_leg_loading": True})
        full = {f.name: _middle(f) for f in record_fields()  # torques, not the raw forces
                if f.role not in ("rows", "red_flag") and f.name not in base
                and f.converts_to is None}
        records.append({**full, **base, "complaints": [complaint]})
    records.append({**base, "complaints": list(COMPLAINTS), RED_FLAGS[0].name: True})
    return records


def check_model(model: Model, records: list[dict[str, Any]] | None = None) -> list[str]:
    """Problems found when ``model`` assesses the golden records (empty: fit to serve)."""
    problems: list[str] = []
    for i, record in enumerate(records or golden_records()):
        try:
            result = assess(record, model=model).to_dict()
        except Exception as e:  # any failure here means: do not serve this model
            problems.append(f"record {i}: assessment failed ({type(e).__name__}: {e})")
            continue
        flagged = any(record.get(f.name) for f in RED_FLAGS)
        if flagged and result["action"] != "refer":
            problems.append(f"record {i}: red flag not routed to refer")
        if flagged and result.get("results"):
            problems.append(f"record {i}: a refer result carries an estimate")
        for r in result.get("results", []):
            p = r["probability"]
            if not (isinstance(p, float) and math.isfinite(p) and 0.0 < p < 1.0):
                problems.append(f"record {i}: probability {p!r} out of (0, 1)")
            lines = [*r["factors"], *([r["not_recorded"]] if r["not_recorded"] else [])]
            if not math.isclose(r["starting_point"] + sum(x["contribution"] for x in lines),
                                r["raw_score"], abs_tol=1e-6):
                problems.append(f"record {i}: the explanation does not add up to the raw score")
        if flagged:
            continue
        _, rows = rows_from_record(record)
        raw = model.predict_raw(rows)
        contributions = model.contributions(rows)
        if not np.allclose(contributions.sum(axis=1), raw, atol=1e-6):
            problems.append(f"record {i}: contributions do not add up to the raw score")
        if not np.array_equal(model.predict_raw(rows), raw):
            problems.append(f"record {i}: raw score not reproducible")
    return problems
