"""An Assessment as CDS Hooks 2.0 cards (a renderer: a function of the typed Assessment).

One card per presenting complaint, or a single ``critical`` card when a red flag is present
(safety beats the score: the assessment has no estimate then, only the referral and the
warnings). Each card has a summary under 140 characters, an indicator by band (``high`` ->
``warning``, else ``info``), a ``source`` pointing at the model card, a ``uuid`` (kept in the
store for feedback), GitHub-flavoured markdown detail (the starting point for the complaint,
the top factors in percentage points, the findings not recorded on one line, what is missing,
the next best assessment, the warnings, the disclaimer), a ``smart`` link to the clinician page
and, when a next best assessment exists, a suggestion to order it (a FHIR ``ServiceRequest``
create action) with ``selectionBehavior``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from ..assessment import Assessment, ComplaintResult, NextAssessment
from ..fhir.codes import AI_ASSERTED
from ..narrative import narrative

OrderCode = Callable[[str], dict[str, Any]]
SUMMARY_MAX = 139
INDICATOR = {"high": "warning", "moderate": "info", "low": "info"}
TOPIC = {"system": "https://gmed-cds.org/fhir/CodeSystem/topics", "code": "hip-driver",
         "display": "Hip abductor weakness as a driver of knee, IT band or low back pain"}
OVERRIDE_SYSTEM = "https://gmed-cds.org/fhir/CodeSystem/override-reasons"
OVERRIDE_REASONS = [
    {"system": OVERRIDE_SYSTEM, "code": "already-assessed", "display": "Already assessed"},
    {"system": OVERRIDE_SYSTEM, "code": "clinical-judgement",
     "display": "Clinical judgement differs from the estimate"},
    {"system": OVERRIDE_SYSTEM, "code": "not-relevant", "display": "Not relevant to this visit"},
    {"system": OVERRIDE_SYSTEM, "code": "patient-declined", "display": "Patient declined"},
]
TOP_FACTORS = 3


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def _source(assessment: Assessment, base: str) -> dict[str, Any]:
    model = assessment.model
    return {"label": f"Gluteus medius driver model {model['version']} (simulated training data)",
            "url": f"{base}/v1/model/card", "topic": TOPIC}


def _link(assessment_id: str, base: str) -> dict[str, Any]:
    return {"label": "Open the full assessment (factors, missing findings, what the model is)",
            "url": f"{base}/ui/assessments/{assessment_id}", "type": "smart",
            "appContext": json.dumps({"assessmentId": assessment_id})}


def _missing_md(missing: Sequence[Mapping[str, str]]) -> str:
    if not missing:
        return "Nothing the model uses is missing."
    by_group: dict[str, list[str]] = {}
    for m in missing:
        by_group.setdefault(m["group"], []).append(m["label"])
    return "\n".join(f"- *{g}*: " + "; ".join(labels) for g, labels in by_group.items())


def _detail(complaint: ComplaintResult, assessment: Assessment, notes: list[str]) -> str:
    pct = round(100 * complaint.probability)
    start = round(100 * complaint.starting_probability)
    lines = [f"**{complaint.complaint_label}**: estimated probability that hip abductor "
             f"(gluteus medius) weakness is a driver: **{pct}%** ({complaint.band}).", "",
             f"**Why**: from {start}%, the starting point for "
             f"{complaint.complaint_label.lower()} (largest contributions first):"]
    lines += [f"- {f.text}" for f in complaint.factors[:TOP_FACTORS]] or [
        "- no recorded finding moved the estimate"]
    if complaint.not_recorded:
        lines.append(f"- {complaint.not_recorded.text}")
    nxt = complaint.next_best_assessment
    if nxt:
        lines += ["", f"**Next best assessment**: {nxt.text}"]
    lines += ["", "**Not recorded**:", _missing_md(complaint.missing)]
    for text in [w["message"] for w in assessment.warnings] + notes:
        lines += ["", f"> {text}"]
    lines += ["", f"*{assessment.disclaimer}*"]
    return "\n".join(lines)


@lru_cache(maxsize=256)
def _order_div(procedure: str, complaint_label: str, order_code: OrderCode) -> str:
    """The narrative of a proposed order (a function of the order's code and reason only),
    made once per procedure and complaint (``order_code`` is a pure function of its text)."""
    return str(narrative({"resourceType": "ServiceRequest", "code": order_code(procedure),
                          "reasonCode": [{"text": _reason(complaint_label)}]},
                         f"Proposed order: {procedure}")["div"])


def _reason(complaint_label: str) -> str:
    return f"Is hip abductor weakness driving {complaint_label}?"


def _suggestion(nxt: NextAssessment, complaint_label: str, order_code: OrderCode,
                patient_id: str | None, encounter_id: str | None) -> dict[str, Any]:
    """The suggestion to order ``nxt``: a draft ServiceRequest (its narrative after ``meta``,
    as :func:`cds.narrative.with_narrative` places it) built from its precomputed parts."""
    procedure = nxt.procedure or nxt.label
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest", "meta": {"security": [dict(AI_ASSERTED)]},
        "text": {"status": "generated",
                 "div": _order_div(procedure, complaint_label, order_code)},
        "status": "draft", "intent": "proposal",
        "code": order_code(procedure),
        "subject": {"reference": f"Patient/{patient_id}"} if patient_id
        else {"display": "Current patient"},
        "reasonCode": [{"text": _reason(complaint_label)}],
        "note": [{"text": nxt.text}],
    }
    if encounter_id:
        request["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    return {"label": _short(f"Order: {procedure}"), "uuid": str(uuid.uuid4()),
            "isRecommended": True,
            "actions": [{"type": "create", "description": _short(f"Order {procedure}"),
                         "resource": request}]}


def cards(assessment: Assessment, assessment_id: str, base: str, *, order_code: OrderCode,
          patient_id: str | None = None, encounter_id: str | None = None,
          notes: list[str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The cards for an assessment, and the rows the store keeps for feedback.

    ``base``: the service's URL (the model card and the clinician page are under it);
    ``order_code``: a procedure's text -> the ``ServiceRequest.code`` of its suggested order."""
    notes = notes or []
    source, link = _source(assessment, base), _link(assessment_id, base)
    if assessment.action == "refer":
        flags = [f["label"] for f in assessment.red_flags]
        warnings = [x for w in assessment.warnings for x in ("", f"> {w['message']}")]
        referral: dict[str, Any] = {
            "uuid": str(uuid.uuid4()), "indicator": "critical", "source": source,
            "summary": _short("Red flag: refer / rule out serious pathology before "
                              "considering a hip driver"),
            "detail": "\n".join(["**Red flags present** (no hip-driver estimate is given):",
                                 *[f"- {f}" for f in flags], "", assessment.referral or "",
                                 *warnings, "",
                                 f"*{assessment.disclaimer}*"]),
            "links": [link], "overrideReasons": OVERRIDE_REASONS}
        return [referral], [{"uuid": referral["uuid"], "complaint": None,
                             "suggestion_uuid": None}]
    out, rows = [], []
    for complaint in assessment.results:
        pct = round(100 * complaint.probability)
        card: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "summary": _short(f"{complaint.complaint_label}: {complaint.band} likelihood "
                              f"({pct}%) that hip abductor weakness drives it"),
            "indicator": INDICATOR.get(complaint.band, "info"),
            "detail": _detail(complaint, assessment, notes),
            "source": source, "links": [link], "overrideReasons": OVERRIDE_REASONS,
        }
        suggestion_uuid = None
        if complaint.next_best_assessment:
            suggestion = _suggestion(complaint.next_best_assessment, complaint.complaint_label,
                                     order_code, patient_id, encounter_id)
            card["suggestions"] = [suggestion]
            card["selectionBehavior"] = "at-most-one"
            suggestion_uuid = suggestion["uuid"]
        out.append(card)
        rows.append({"uuid": card["uuid"], "complaint": complaint.complaint,
                     "suggestion_uuid": suggestion_uuid})
    return out, rows
