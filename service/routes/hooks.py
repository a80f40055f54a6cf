"""CDS Hooks 2.0: discovery, the service call, and feedback.

``gmed-driver`` answers ``patient-view``; ``gmed-driver-encounter`` runs the same logic on
``encounter-start``. A call is validated (``hook``, ``hookInstance``, ``context`` with
``patientId`` and ``userId``, ``fhirServer`` when ``fhirAuthorization`` is given), its prefetch is
mapped to the contract by :mod:`cds.fhir.read` (units checked, never misread; an Observation whose
value cannot be used is set aside with a ``resource-set-aside`` warning, never failing the
call), the model runs, and the
assessment with its cards and an audit line is committed before the cards are returned.
No covered complaint -> ``{"cards": []}``; required data absent and not fetchable -> 412.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from cds.assessment import Assessment
from cds.errors import FieldError, InvalidRecord
from cds.fhir.read import record_from_fhir, set_aside_warnings
from cds.validate import is_text

from ..config import base_url
from ..ehr import prefetch
from ..ehr.cards import build_cards
from ..http.errors import BadRequest, NotFound, PreconditionFailed
from ..http.payload import json_body, require_object
from ..security.auth import caller, issuer
from ..serving.assessing import assess_and_record
from ..store import get_store

bp = Blueprint("cds_hooks", __name__)

DESCRIPTION = ("Estimates, for each presenting knee (patellofemoral, IT band) or low back "
               "complaint, the probability that gluteus medius (hip abductor) weakness is a "
               "driver; explains it factor by factor, lists what is missing and proposes the "
               "next best assessment. A red flag gives a referral card and no estimate. "
               "Demonstration model trained on simulated data.")
SERVICES: dict[str, dict[str, Any]] = {
    "gmed-driver": {"hook": "patient-view", "context": ("patientId", "userId")},
    "gmed-driver-encounter": {"hook": "encounter-start",
                              "context": ("patientId", "userId", "encounterId")},
}
REQUIRED_RECORD = ("age_years", "sex")
SERVICE_VERSION = "1.1.0"  # discovery ``version`` (CDS Hooks 3.0 ballot; ignored by 2.0 clients)
OPTIONAL_NOTES = {
    "observations": "Exam and movement Observations were not available to the service "
                    "(not prefetched, not fetchable): the estimate uses what was.",
    "intake": "The intake QuestionnaireResponse was not available to the service.",
}


@bp.get("/cds-services")
def discovery() -> Response:
    """The CDS Hooks discovery document."""
    return jsonify({"services": [
        {"hook": spec["hook"], "id": sid, "version": SERVICE_VERSION,
         "title": "Is gluteus medius weakness driving this knee or low back pain?",
         "description": DESCRIPTION, "prefetch": dict(prefetch.TEMPLATES)}
        for sid, spec in SERVICES.items()]})


def _field_error(field: str, rule: str, message: str) -> BadRequest:
    return BadRequest(message, [FieldError(field, rule, message)])


def validate_call(body: Any, service_id: str) -> dict[str, Any]:
    """The CDS Hooks request fields this service relies on, or a 400 naming the first bad one."""
    spec = SERVICES[service_id]
    call = require_object(body)
    if call.get("hook") != spec["hook"]:
        raise _field_error("hook", "hook", f"This service answers the '{spec['hook']}' hook")
    instance = call.get("hookInstance")
    if not is_text(instance) or not 0 < len(instance) <= 128:
        raise _field_error("hookInstance", "required", "hookInstance: a string (UUID) is required")
    context = call.get("context")
    if not isinstance(context, Mapping):
        raise _field_error("context", "required", "context: an object is required")
    for key in spec["context"]:
        value = context.get(key)
        if not is_text(value) or not 0 < len(value) <= 256:
            raise _field_error(f"context.{key}", "required", f"context.{key}: a string is required")
    if "fhirAuthorization" in call:
        auth = call["fhirAuthorization"]
        if not isinstance(auth, Mapping) or not isinstance(auth.get("access_token"), str):
            raise _field_error("fhirAuthorization", "type",
                               "fhirAuthorization: an object with access_token is required")
        if not isinstance(call.get("fhirServer"), str):
            raise _field_error("fhirServer", "required",
                               "fhirServer is required when fhirAuthorization is present")
    if "prefetch" in call and call["prefetch"] is not None \
            and not isinstance(call["prefetch"], Mapping):
        raise _field_error("prefetch", "type", "prefetch: an object is required")
    return call


def _no_cards(patient_ref: str | None, reason: str) -> Response:
    get_store().audit_event(caller(), "cds-hooks", patient_ref, {"cards": 0, "reason": reason})
    return jsonify({"cards": []})


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    """Answer a hook with cards (see the module docstring)."""
    if service_id not in SERVICES:
        raise NotFound(f"No CDS service '{service_id}'")
    call = validate_call(json_body(), service_id)
    context = call["context"]
    gathered = prefetch.gather(call, allowlist=list(current_app.config["FHIR_SERVER_ALLOWLIST"]),
                               timeout=float(current_app.config["FHIR_TIMEOUT"]),
                               private_hosts=list(current_app.config["OUTBOUND_PRIVATE_HOSTS"]))
    fhir = record_from_fhir(gathered.resources, lenient=True)
    record = fhir.record
    if fhir.patient_id and fhir.patient_id != context["patientId"]:
        raise InvalidRecord([FieldError("subject", "subject",
                                        "Prefetched data is about another patient than "
                                        "context.patientId")])
    prefetch.require(gathered, has_intake_complaints=bool(record.get("complaints")))
    store = get_store()
    patient_ref = store.pseudonym(context["patientId"], issuer())
    if not record.get("complaints"):
        return _no_cards(patient_ref, "no covered complaint")
    absent = [f for f in REQUIRED_RECORD if record.get(f) is None]
    if absent:
        raise PreconditionFailed("The patient record lacks required data", [
            FieldError(f, "required", f"{f}: required, and not in the prefetched data")
            for f in absent])
    record["patient_id"] = context["patientId"]
    notes = [OPTIONAL_NOTES[k] for k in ("observations", "intake") if k in gathered.unavailable]

    def respond(assessment: Assessment, aid: str) -> tuple[Any, list[dict[str, Any]]]:
        # the cards' uuids and the assessment are committed together before anyone sees them
        return build_cards(assessment, aid, base_url(), patient_id=context["patientId"],
                           encounter_id=context.get("encounterId"), notes=notes)

    assessed = assess_and_record(
        record, source="cds-hooks", caller=caller(), issuer=issuer(), patient_ref=patient_ref,
        extra_warnings=set_aside_warnings(fhir.set_aside),  # on the card and RiskAssessment
        hook_instance=call["hookInstance"], respond=respond)
    return jsonify({"cards": assessed.answer})


_OUTCOMES = ("accepted", "overridden")


def _feedback_item(i: int, item: Any) -> dict[str, Any]:
    where = f"feedback[{i}]"
    if not isinstance(item, Mapping):
        raise _field_error(where, "type", f"{where}: an object is required")
    if not is_text(item.get("card")) or not item["card"]:
        raise _field_error(f"{where}.card", "required", f"{where}.card: the card uuid is required")
    if item.get("outcome") not in _OUTCOMES:
        raise _field_error(f"{where}.outcome", "enum", f"{where}.outcome: accepted or overridden")
    if not is_text(item.get("outcomeTimestamp")) or not item["outcomeTimestamp"]:
        raise _field_error(f"{where}.outcomeTimestamp", "required",
                           f"{where}.outcomeTimestamp: an ISO timestamp is required")
    accepted = item.get("acceptedSuggestions")
    if item["outcome"] == "accepted" and not (
            isinstance(accepted, list) and accepted
            and all(isinstance(a, Mapping) and is_text(a.get("id")) for a in accepted)):
        raise _field_error(f"{where}.acceptedSuggestions", "required",
                           f"{where}.acceptedSuggestions: required for accepted, each with an id")
    reason = item.get("overrideReason")
    if reason is not None and not isinstance(reason, Mapping):
        raise _field_error(f"{where}.overrideReason", "type", f"{where}.overrideReason: an object")
    return {"card_uuid": item["card"], "outcome": item["outcome"],
            "accepted_suggestions": accepted if item["outcome"] == "accepted" else None,
            "override_reason": dict(reason) if reason else None,
            "outcome_timestamp": item["outcomeTimestamp"][:40]}


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    """Store accepted / overridden outcomes of our cards (with override reasons)."""
    if service_id not in SERVICES:
        raise NotFound(f"No CDS service '{service_id}'")
    body = require_object(json_body())
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise _field_error("feedback", "required", "feedback: a non-empty array is required")
    rows = [_feedback_item(i, item) for i, item in enumerate(items)]
    store = get_store()
    known = store.known_cards([r["card_uuid"] for r in rows], issuer())
    unknown = [i for i, r in enumerate(rows) if r["card_uuid"] not in known]
    if unknown:
        raise InvalidRecord([FieldError(f"feedback[{i}].card", "unknown-card",
                                        "No card of this service has this uuid") for i in unknown])
    store.save_feedback(rows, caller())
    return jsonify({"stored": len(rows)})
