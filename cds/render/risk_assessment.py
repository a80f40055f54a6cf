"""An Assessment as a FHIR R4 ``RiskAssessment`` (``application/fhir+json``).

One ``prediction`` per complaint: ``probabilityDecimal`` is the calibrated probability that hip
abductor weakness drives that complaint, ``qualitativeRisk`` the band; with a red flag the one
prediction is the coded referral, without a probability.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..assessment import Assessment
from ..features import COMPLAINT_SYSTEM, LOCAL_SYSTEM
from ..fhir.codes import (
    AI_ASSERTED,
    BASE,
    REFERRAL_LOCAL,
    REFERRAL_SNOMED,
    RISK_PROBABILITY,
    RISK_PROBABILITY_DISPLAY,
)
from ..narrative import with_narrative


def _risk_band(band: str) -> dict[str, Any]:
    return {"coding": [{"system": RISK_PROBABILITY, "code": band,
                        "display": RISK_PROBABILITY_DISPLAY.get(band, band.capitalize())}],
            "text": band}


def _subject(subject: str | None, patient_id: str | None,
             pseudonym: str | None) -> dict[str, Any]:
    if subject:
        return {"reference": subject}
    if patient_id:  # the caller's own identifier, as given
        return {"identifier": {"value": patient_id}}
    if pseudonym:  # a stored assessment: the store keeps only the pseudonym (HMAC)
        return {"identifier": {"type": {"text": "Pseudonymised patient reference "
                                                "(HMAC-SHA256 of the caller's patient id)"},
                               "value": pseudonym}}
    return {"display": "Unidentified patient"}


def _model_device(model: Mapping[str, Any], model_card_url: str | None) -> dict[str, Any]:
    device: dict[str, Any] = {
        "resourceType": "Device", "id": "model", "status": "active",
        "deviceName": [{"name": f"Gluteus medius driver model {model['id']}",
                        "type": "model-name"}],
        "version": [{"value": str(model["version"])}],
        "type": {"text": "Machine-learning model (gradient-boosted trees, calibrated)"},
    }
    if model_card_url:
        device["url"] = model_card_url
        device["note"] = [{"text": f"Model card: {model_card_url}"}]
    return device


def risk_assessment(assessment: Assessment, *, subject: str | None = None, rid: str | None = None,
                    occurrence: str | None = None, basis: Iterable[str] = (),
                    patient_id: str | None = None, pseudonym: str | None = None,
                    model_card_url: str | None = None) -> dict[str, Any]:
    """An :class:`~cds.assessment.Assessment` as a FHIR R4 RiskAssessment.

    Each ``prediction`` is one complaint: ``outcome`` names it, ``probabilityDecimal`` is the
    calibrated probability (0-1) that hip abductor weakness drives it, ``qualitativeRisk`` the
    model's band and ``rationale`` the top factors. With a red flag the one prediction is the
    referral, coded (SNOMED CT 3457005 "Patient referral" and the local ``refer_red_flag``), with
    the red flags as its rationale and no probability or band; the first note says to refer:
    safety beats the score.
    """
    model = assessment.model
    notes = [f"Model {model['id']} {model['version']}, trained on {model['trained_on']}.",
             "probabilityDecimal: calibrated probability (0-1) that gluteus medius (hip "
             "abductor) weakness is a driver of the complaint; qualitativeRisk: the model's band.",
             assessment.disclaimer]
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "meta": {"security": [dict(AI_ASSERTED)]},
        "contained": [_model_device(model, model_card_url)],
        "status": "final",
        "method": {"coding": [{"system": f"{BASE}/CodeSystem/models", "code": model["id"],
                               "version": model["version"], "display": model["id"]}]},
        "code": {"coding": [{"system": LOCAL_SYSTEM, "code": "hip_driver",
                             "display": "Hip abductor weakness as a driver of the complaint"}]},
        "subject": _subject(subject, patient_id, pseudonym),
        "performer": {"reference": "#model", "display": f"Model {model['id']} {model['version']}"},
    }
    if rid:
        resource["id"] = rid
    if occurrence:
        resource["occurrenceDateTime"] = occurrence
    if basis:
        resource["basis"] = [{"reference": r} for r in basis]
    if assessment.action == "refer":
        flags = "; ".join(f["label"] for f in assessment.red_flags)
        referral = assessment.referral or f"Refer / rule out serious pathology first: {flags}."
        notes.insert(0, f"RED FLAG - {referral}")
        # the referral is the prediction's outcome, coded; no probability, band or rationale
        # from the model exists to give
        resource["prediction"] = [{
            "outcome": {"coding": [REFERRAL_SNOMED, REFERRAL_LOCAL], "text": referral},
            "rationale": f"Red flag present: {flags}",
        }]
    else:
        resource["prediction"] = [{
            "outcome": {"coding": [{"system": COMPLAINT_SYSTEM, "code": r.complaint,
                                    "display": r.complaint_label}],
                        "text": f"Hip abductor weakness drives: {r.complaint_label}"},
            "probabilityDecimal": r.probability,
            "qualitativeRisk": _risk_band(r.band),
            "rationale": "; ".join(f.text for f in r.factors[:3]) or "No factor recorded",
        } for r in assessment.results]
    notes.extend(w["message"] for w in assessment.warnings)
    resource["note"] = [{"text": n} for n in notes]
    return with_narrative(resource, "Hip abductor weakness as a driver: risk assessment")
