"""The JSON API (``/v1``) and the FHIR artefacts we publish (``/fhir``).

``POST /v1/assessments`` takes a patient record (the contract's JSON Schema) or FHIR R4 (a Bundle,
a list of resources, or a single QuestionnaireResponse) and returns the Assessment with its id,
or a FHIR ``RiskAssessment`` when asked with ``Accept: application/fhir+json`` (one negotiation:
:func:`service.http.negotiate.negotiate`; an ``Accept`` naming neither is 406). Every assessment is
assessed, committed to the store (with an audit line) and counted by
:func:`service.serving.assessing.assess_and_record` before the answer leaves. A stored assessment is read
back as it was stored (JSON), or rendered as a RiskAssessment from its typed form.

``POST /v1/assessments/batch`` is all-or-nothing in the store: the assessments of every valid
record are committed in one transaction (one unit of the group commit), so a 503 (deadline,
store) means none was stored and a 201 means all were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from flask.typing import ResponseReturnValue

from cds.errors import FieldError, InvalidRecord
from cds.features import ROWS, contract_hash, contract_table, record_json_schema
from cds.fhir.publish import intake_questionnaire
from cds.fhir.read import record_from_fhir
from cds.render.risk_assessment import risk_assessment
from cds.validate import is_text

from ..config import base_url
from ..ehr.terminology import findings_code_system
from ..http import deadline, limits
from ..http.errors import FHIR_JSON, NotFound
from ..http.jsontext import object_response
from ..http.negotiate import negotiate
from ..http.payload import json_body, require_object
from ..security.auth import caller, issuer
from ..serving.assessing import Assessed, assess_and_record, count, prepare
from ..serving.model_host import get_model
from ..store import AssessmentRow, get_store
from .fhir import fhir_response, stored_risk_assessment

bp = Blueprint("api", __name__)
HIDDEN_METADATA = ("procedure_effects", "population")
JSON = "application/json"


def parse_input(body: Any, where: str = "$") -> tuple[dict[str, Any], str | None, list[str]]:
    """A record (and the FHIR subject and basis, if FHIR) from a JSON record or FHIR resources
    (413 if a list of them, or a Bundle's entries, has more than ``FHIR_MAX_RESOURCES`` items)."""
    if isinstance(body, list) or (isinstance(body, Mapping) and "resourceType" in body):
        limits.check_fhir_items(body, where)
        fhir = record_from_fhir(body)
        return fhir.record, (f"Patient/{fhir.patient_id}" if fhir.patient_id else None), fhir.basis
    if not isinstance(body, Mapping):
        raise InvalidRecord([FieldError(where, "type",
                                        "A patient record (JSON object) or FHIR resources")])
    return dict(body), None, []


def _recorded(record: Mapping[str, Any], source: str) -> dict[str, Any]:
    """How an API assessment of ``record`` is stored (:mod:`service.serving.assessing`): by this
    caller, for this issuer, under the pseudonym of the record's ``patient_id``."""
    patient_id = record.get("patient_id")
    return {"source": source, "caller": caller(), "issuer": issuer(),
            "patient_ref": get_store().pseudonym(
                patient_id if isinstance(patient_id, str) else None, issuer())}


def _created_json(assessed: Assessed, body: Any, subject: str | None,
                  basis: list[str]) -> Response:
    return object_response({"id": assessed.id}, assessed.encoded, 201)


def _created_fhir(assessed: Assessed, body: Any, subject: str | None,
                  basis: list[str]) -> Response:
    # a plain record's patient_id, as the caller gave it, names the subject (never logged)
    pid = body.get("patient_id") if isinstance(body, Mapping) else None
    return fhir_response(risk_assessment(
        assessed.assessment, subject=subject, rid=assessed.id, basis=basis,
        occurrence=date.today().isoformat(), patient_id=pid if isinstance(pid, str) else None,
        model_card_url=f"{base_url()}/v1/model/card"), 201)


_Created = Callable[[Assessed, Any, str | None, list[str]], Response]
CREATED: dict[str, _Created] = {JSON: _created_json, FHIR_JSON: _created_fhir}


@bp.post("/v1/assessments")
def create_assessment() -> ResponseReturnValue:
    """Assess one patient; 201 with the Assessment (or a RiskAssessment) and its Location."""
    _, render = negotiate(CREATED)
    body = json_body()
    record, subject, basis = parse_input(body)
    assessed = assess_and_record(record, **_recorded(record, "api"))
    response = render(assessed, body, subject, basis)
    response.headers["Location"] = f"/v1/assessments/{assessed.id}"
    return response


def _own_assessment(aid: str) -> AssessmentRow:
    """The stored assessment ``aid`` if the calling issuer stored it; 404 otherwise (another
    issuer's id is not confirmed to exist)."""
    row = get_store().get_assessment(aid)
    if row is None or row.get("issuer") != issuer():
        raise NotFound("No assessment with this id")
    return row


def _stored_json(row: Mapping[str, Any]) -> Response:
    return jsonify({"id": row["id"], **row["result"]})


STORED: dict[str, Callable[[Mapping[str, Any]], Response]] = {
    JSON: _stored_json, FHIR_JSON: lambda row: fhir_response(stored_risk_assessment(row))}


@bp.get("/v1/assessments/<aid>")
def read_assessment(aid: str) -> Response:
    """A stored assessment of this caller's issuer (its result, never its inputs' patient
    reference); a RiskAssessment when asked with ``Accept: application/fhir+json`` (so the
    ``Location`` of a FHIR create resolves as FHIR)."""
    _, render = negotiate(STORED)
    return render(_own_assessment(aid))


@bp.post("/v1/assessments/batch")
def batch() -> ResponseReturnValue:
    """Up to ``BATCH_MAX`` records. A record that breaks the contract fails alone (its result
    says why); the assessments of all the others are committed in one transaction, or none is:
    201 when they were, 503 (deadline or store) when none was, 200 when no record was valid."""
    body = require_object(json_body())
    records = body.get("records")
    limit = int(current_app.config["BATCH_MAX"])
    if not isinstance(records, list) or not 1 <= len(records) <= limit:
        raise InvalidRecord([FieldError("records", "maxItems" if isinstance(records, list)
                                        and records else "required",
                                        f"records: an array of 1 to {limit} records")])
    results: list[dict[str, Any]] = []
    work: list[Any] = []
    stored: list[Assessed] = []
    for i, item in enumerate(records):
        deadline.check("batch")  # no point assessing what could no longer be stored
        try:
            record, _, _ = parse_input(item, f"records[{i}]")
            assessed, rows = prepare(record, **_recorded(record, "api-batch"))
        except InvalidRecord as e:
            results.append({"index": i, "status": e.status,
                            "errors": [err.to_dict() for err in e.errors]})
            continue
        work.extend(rows)
        stored.append(assessed)
        results.append({"index": i, "status": 201, "id": assessed.id,
                        "assessment": {"id": assessed.id, **assessed.result}})
    if not work:
        return jsonify({"results": results}), 200
    get_store().write(work)  # one unit: all committed, or withdrawn / rolled back whole
    for assessed in stored:
        count(assessed)
    return jsonify({"results": results}), 201


@bp.get("/v1/model")
def model_info() -> Response:
    """The model's metadata: version, training facts, metrics, bands (bulky tables left out)."""
    model = get_model()
    facts = {k: v for k, v in model.metadata.items() if k not in HIDDEN_METADATA}
    facts.update(id=model.id, version=model.version, trained_on=model.trained_on,
                 model_card_url="/v1/model/card")
    return jsonify(facts)


@bp.get("/v1/model/card")
def model_card() -> Response:
    """The model card (markdown): what the model is and is not. Public: the card's source link."""
    path = get_model().path / "MODEL_CARD.md"
    if not path.is_file():
        raise NotFound("This model has no model card")
    return Response(path.read_text(), mimetype="text/markdown")


@bp.get("/v1/features")
def features() -> Response:
    """The feature contract: the table, its hash and the record's JSON Schema."""
    return jsonify({"contract_hash": contract_hash(), "features": contract_table(),
                    "record_schema": record_json_schema()})


def _outcome_errors(body: Mapping[str, Any]) -> list[FieldError]:
    errors = []
    if not is_text(body.get("assessment_id")) or not body["assessment_id"]:
        errors.append(FieldError("assessment_id", "required",
                                 "assessment_id: the assessment's id (Unicode text)"))
    if body.get("complaint") not in ROWS.allowed:
        errors.append(FieldError("complaint", "enum",
                                 f"complaint: one of {', '.join(ROWS.allowed)}"))
    if not isinstance(body.get("hip_driver"), bool):
        errors.append(FieldError("hip_driver", "type",
                                 "hip_driver: true if hip abductor weakness was confirmed as a "
                                 "driver (weakness found and a meaningful response), else false"))
    confirmed = body.get("confirmed_on")
    if confirmed is not None:
        try:
            date.fromisoformat(confirmed if isinstance(confirmed, str) else "")
        except ValueError:
            errors.append(FieldError("confirmed_on", "format", "confirmed_on: a date YYYY-MM-DD"))
    errors += [FieldError(str(k)[:64], "additionalProperties", "Unknown field")
               for k in body if k not in ("assessment_id", "complaint", "hip_driver",
                                          "confirmed_on")]
    return errors


@bp.post("/v1/outcomes")
def record_outcome() -> ResponseReturnValue:
    """The confirmed outcome of an earlier assessment's complaint, kept for retraining."""
    body = require_object(json_body())
    errors = _outcome_errors(body)
    if errors:
        raise InvalidRecord(errors)
    store = get_store()
    row = _own_assessment(body["assessment_id"])
    if body["complaint"] not in row["inputs"].get(ROWS.name, []):
        raise InvalidRecord([FieldError("complaint", "assessed",
                                        "complaint: not one of the assessment's complaints")])
    oid = store.save_outcome(assessment_id=row["id"], complaint=body["complaint"],
                             hip_driver=body["hip_driver"], confirmed_on=body.get("confirmed_on"),
                             caller=caller(), patient_ref=row["patient_ref"])
    return jsonify({"id": oid}), 201


@bp.get("/fhir/Questionnaire/gmed-intake")
def questionnaire() -> Response:
    """The intake Questionnaire, generated from the contract."""
    return fhir_response(intake_questionnaire())


@bp.get("/fhir/CodeSystem/findings")
def code_system() -> Response:
    """The findings code system: every finding, its standard code or why it has none."""
    return fhir_response(findings_code_system())
