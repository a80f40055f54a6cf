"""The patient over time, on the clinician page: the visits of one patient, and two compared.

Routes (on the ``ui`` blueprint, gated like the result page: a SMART session sees only its
launched patient's assessments):

* ``GET /ui/assessments/<id>/history`` - every assessment of that assessment's patient, newest
  first (with a SMART launch, the launched patient; in development, the patient reference
  entered on the form), each with the visit it was made from ("add or change findings" links the
  new assessment to the one it came from: :meth:`~service.store.Store.save_assessment_from`).
* ``GET /ui/assessments/<id>/compare/<other>`` - two visits of the same patient side by side:
  the findings and their change, the estimate per complaint and its change in percentage points,
  and which findings moved it: each finding's exact contribution at both visits (log-odds, and
  in percentage points along the calibrated curve as each visit's page shows them), largest
  change first.

Nothing clinical is computed here: values, contributions and points are read from the stored
assessments; only differences of stored numbers are taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import render_template
from flask.typing import ResponseReturnValue

from cds.explain import with_unit
from cds.features import YES_NO, Feature, record_fields

from ..security import patient_label
from ..store import get_store
from .pages import _ID, _not_found, _viewable, bp


def made_from(previous_id: str, patient_ref: str | None) -> tuple[str | None, str | None]:
    """The assessment a new one was made from (``None`` unless it exists and is the same
    patient's) and the new one's patient: an edit with no reference entered stays the earlier
    visit's patient."""
    row = get_store().get_assessment(previous_id) if _ID.match(previous_id or "") else None
    if row is None:
        return None, patient_ref
    if patient_ref is None:
        return row["id"], row["patient_ref"]
    return (row["id"] if row["patient_ref"] == patient_ref else None), patient_ref


def _when(row: Mapping[str, Any]) -> str:
    created = row["created_at"]
    return created.strftime("%d %b %Y, %H:%M UTC") if isinstance(created, datetime) else ""


def _estimates(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"complaint": r["complaint"], "label": r["complaint_label"],
             "percent": round(100 * r["probability"]), "band": r["band"]}
            for r in result.get("results", [])]


@bp.get("/assessments/<aid>/history")
def history(aid: str) -> ResponseReturnValue:
    """The patient's assessments, newest first."""
    if not isinstance(row := _viewable(aid), dict):
        return row
    rows = (get_store().patient_assessments(row["patient_ref"]) if row["patient_ref"]
            else [{**row, "previous_id": get_store().previous_of(row["id"])}])
    visits = [{"id": r["id"], "when": _when(r), "refer": r["result"]["action"] == "refer",
               "estimates": _estimates(r["result"]), "previous_id": r["previous_id"],
               "current": r["id"] == row["id"]} for r in rows]
    older = {v["id"]: (v["previous_id"] or (visits[i + 1]["id"] if i + 1 < len(visits) else None))
             for i, v in enumerate(visits)}
    return render_template("ui/history.html", aid=row["id"], visits=visits, older=older,
                           patient_shown=patient_label.shown(row["patient_ref"]),
                           by_reference=row["patient_ref"] is not None)


def _shown(f: Feature, value: Any) -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        labels = dict(zip(f.allowed, f.allowed_labels or f.allowed, strict=True))
        return "; ".join(labels.get(v, str(v)) for v in value)
    if f.kind == "category":
        return dict(zip(f.allowed, f.allowed_labels or f.allowed, strict=True)).get(value, str(value))
    return with_unit(value, f.unit if f.unit != YES_NO else None)


def _change(f: Feature, before: Any, after: Any) -> str:
    if before == after:
        return "same"
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
    if numbers:
        return with_unit(f"{after - before:+.3g}", f.unit if f.unit != YES_NO else None)
    if before is None:
        return "newly recorded"
    return "no longer recorded" if after is None else "changed"


def compare_findings(earlier: Mapping[str, Any], later: Mapping[str, Any]
                     ) -> list[dict[str, str]]:
    """Every finding recorded at either visit, in the contract's order, with its change."""
    return [{"label": f.label, "before": _shown(f, earlier.get(f.name)),
             "after": _shown(f, later.get(f.name)),
             "change": _change(f, earlier.get(f.name), later.get(f.name))}
            for f in record_fields() if f.name in earlier or f.name in later]


def compare_complaint(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
                      ) -> dict[str, Any]:
    """One complaint at two visits: the estimates, their change, and each finding's stored
    contribution at both (largest change of contribution first)."""
    either = after or before or {}
    out: dict[str, Any] = {"label": either.get("complaint_label", ""),
                           "before": None if before is None else round(100 * before["probability"]),
                           "after": None if after is None else round(100 * after["probability"])}
    out["change"] = (None if out["before"] is None or out["after"] is None
                     else out["after"] - out["before"])
    lines: dict[str, dict[str, Any]] = {}
    for key, r in (("before", before), ("after", after)):
        for fac in (r or {}).get("factors", []):
            line = lines.setdefault(fac["feature"], {"label": fac["label"]})
            line[key] = {"contribution": fac["contribution"], "points": fac.get("points")}
        if r and r.get("not_recorded"):
            nr = r["not_recorded"]
            line = lines.setdefault("_not_recorded", {"label": "Not recorded (together)"})
            line[key] = {"contribution": nr["contribution"], "points": nr.get("points")}
    for line in lines.values():
        line["delta"] = (line.get("after", {}).get("contribution", 0.0)
                         - line.get("before", {}).get("contribution", 0.0))
    out["lines"] = sorted(lines.values(), key=lambda x: -abs(x["delta"]))
    out["moved"] = [x for x in out["lines"] if abs(x["delta"]) >= 0.05][:3]
    return out


@bp.get("/assessments/<aid>/compare/<other>")
def compare(aid: str, other: str) -> ResponseReturnValue:
    """Two visits of one patient side by side, the earlier on the left."""
    if not isinstance(a := _viewable(aid), dict):
        return a
    if not isinstance(b := _viewable(other), dict):
        return b
    if a["patient_ref"] is None or a["patient_ref"] != b["patient_ref"]:
        return _not_found()
    earlier, later = sorted((a, b), key=lambda r: r["created_at"])
    by_complaint: dict[str, list[Mapping[str, Any] | None]] = {}
    for i, row in enumerate((earlier, later)):
        for r in row["result"].get("results", []):
            by_complaint.setdefault(r["complaint"], [None, None])[i] = r
    refer = [row["result"]["action"] == "refer" for row in (earlier, later)]
    return render_template(
        "ui/compare.html", earlier={"id": earlier["id"], "when": _when(earlier)},
        later={"id": later["id"], "when": _when(later)}, refer=refer,
        patient_shown=patient_label.shown(a["patient_ref"]),
        findings=compare_findings(earlier["inputs"], later["inputs"]),
        complaints=[compare_complaint(x, y) for x, y in by_complaint.values()])
