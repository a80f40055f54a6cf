"""The HTML result fragment of an Assessment: what the clinician page shows of it.

:func:`result_view` turns the typed Assessment into the values the page's result template
(``service/templates/ui/result.html``) lays out: per complaint the percentage, the probability
scale and the factor waterfall (inline SVG, :mod:`cds.render.svg`), the top factors in words, the
factor table, and what is missing by group. A refer result has no complaint view at all (safety
beats the score), even one stored when refer results still carried estimates. The page's chrome,
forms and sign-in stay in :mod:`service.ui.pages`. Imports ``markupsafe`` (through the SVG): not
re-exported by :mod:`cds.render`, so ``import cds`` does not load it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..assessment import Assessment
from ..features import GROUPS
from .svg import factor_value, probability_scale, waterfall

TOP_WORDS = 3
GROUP_TEXT = {
    "intake": ("Intake", "Patient-reported, at the front desk."),
    "exam": ("Clinical examination", "In-clinic tests, including hand-held dynamometry."),
    "movement": ("Movement analysis", "Video or sensors: single-leg squat, and running for runners."),
}


def complaint_view(r: Mapping[str, Any], bands: Mapping[str, float] | None,
                   index: int) -> dict[str, Any]:
    """One complaint's view (``r``: the complaint in the Assessment's JSON form). A result
    stored before starting points (its starting probability NaN, :meth:`Assessment.from_dict`)
    starts at the average patient, the model's base value."""
    missing: dict[str, list[str]] = {}
    for m in r["missing"]:
        missing.setdefault(m["group"], []).append(m["label"])
    factors = r["factors"]
    start = r["starting_point"]
    known = not math.isnan(r["starting_probability"])
    start_pct = round(100 * r["starting_probability"]) if known else None
    start_label, start_detail = (
        (f"Starting point for {r['complaint_label'].lower()}",
         f"the base rate for this complaint: {start_pct}%") if start_pct is not None
        else ("Starting point: the average patient", "model base value"))
    return {**r, "percent": round(100 * r["probability"]), "start_percent": start_pct,
            "start_label": start_label, "start": start,
            "scale": probability_scale(r["probability"], bands, r["band"], f"scale-{index}"),
            "chart": waterfall(start, r["raw_score"], factors, f"wf-{index}",
                               start_label=start_label, start_detail=start_detail,
                               not_recorded=r.get("not_recorded")),
            "top": factors[:TOP_WORDS],
            "rows": [{**f, "shown": factor_value(f)} for f in factors],
            "missing_groups": [(GROUP_TEXT[gr][0], missing[gr]) for gr in GROUPS if gr in missing]}


def result_view(assessment: Assessment, bands: Mapping[str, float] | None) -> dict[str, Any]:
    """The result template's values: ``result`` (the Assessment's JSON form), ``refer`` and
    ``complaints`` (one view each; none for a refer result). ``bands``: the model's band
    thresholds, drawn on the probability scale."""
    result = assessment.to_dict()
    refer = assessment.action == "refer"
    return {"result": result, "refer": refer,
            "complaints": [] if refer else [complaint_view(r, bands, i)
                                            for i, r in enumerate(result["results"])]}
