"""The OpenAPI 3.1 document of the service, served at ``GET /openapi.json``.

Built from the same sources as the service: the patient record schema is
:func:`cds.features.record_json_schema`, the Assessment's is derived from its dataclasses
(:func:`cds.render.body.json_schemas`), the prefetch templates come from :mod:`service.ehr.prefetch`.
schemathesis checks every documented response against it inside the test suite.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from cds.features import ROWS, record_json_schema
from cds.render.body import json_schemas

from ..config import DEFAULTS

bp = Blueprint("openapi", __name__)
JSON = "application/json"
FHIR = "application/fhir+json"
NULLABLE_STR = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _record_schema() -> dict[str, Any]:
    schema = {k: v for k, v in record_json_schema().items() if k not in ("$schema", "$id")}
    return schema


FIELD_ERROR = _obj(["field", "rule", "message"], field={"type": "string"},
                   rule={"type": "string"}, message={"type": "string"})


def _assessment_schemas() -> dict[str, Any]:
    """The Assessment and its parts, derived from the type (:func:`cds.render.body.json_schemas`);
    the API's Assessment carries its stored ``id`` first."""
    schemas = json_schemas()
    own = schemas["Assessment"]
    schemas["Assessment"] = {**own, "required": ["id", *own["required"]],
                             "properties": {"id": {"type": "string", "format": "uuid"},
                                            **own["properties"]}}
    return schemas


FHIR_RESOURCE = {"type": "object", "required": ["resourceType"],
                 "properties": {"resourceType": {"type": "string"}}}
CARD = _obj(
    ["uuid", "summary", "indicator", "source"],
    uuid={"type": "string", "format": "uuid"}, summary={"type": "string", "maxLength": 139},
    detail={"type": "string"}, indicator={"enum": ["info", "warning", "critical"]},
    source=_obj(["label"], label={"type": "string"}, url={"type": "string"},
                topic={"type": "object"}),
    suggestions={"type": "array", "items": _obj(
        ["label"], label={"type": "string"}, uuid={"type": "string"},
        isRecommended={"type": "boolean"}, actions={"type": "array", "items": _obj(
            ["type", "description"], type={"enum": ["create", "update", "delete"]},
            description={"type": "string"}, resource=FHIR_RESOURCE)})},
    selectionBehavior={"enum": ["at-most-one", "any"]},
    overrideReasons={"type": "array", "items": {"type": "object"}},
    links={"type": "array", "items": _obj(["label", "url", "type"], label={"type": "string"},
                                          url={"type": "string"},
                                          type={"enum": ["absolute", "smart"]},
                                          appContext={"type": "string"})})
HOOK_REQUEST = _obj(
    ["hook", "hookInstance", "context"],
    hook={"type": "string"}, hookInstance={"type": "string"},
    fhirServer={"type": "string", "format": "uri"},
    fhirAuthorization=_obj(["access_token", "token_type", "expires_in", "scope", "subject"],
                           access_token={"type": "string"}, token_type={"const": "Bearer"},
                           expires_in={"type": "integer"}, scope={"type": "string"},
                           subject={"type": "string"}),
    context=_obj(["patientId", "userId"], patientId={"type": "string"},
                 userId={"type": "string"}, encounterId={"type": "string"}),
    prefetch={"type": "object", "additionalProperties": {"anyOf": [FHIR_RESOURCE,
                                                                   {"type": "null"}]}})
FEEDBACK = _obj(["feedback"], feedback={"type": "array", "minItems": 1, "items": _obj(
    ["card", "outcome", "outcomeTimestamp"], card={"type": "string"},
    outcome={"enum": ["accepted", "overridden"]},
    acceptedSuggestions={"type": "array", "items": _obj(["id"], id={"type": "string"})},
    overrideReason=_obj([], reason={"type": "object"}, userComment={"type": "string"}),
    outcomeTimestamp={"type": "string", "format": "date-time"})})
SCHEMAS: dict[str, Any] = {
    "PatientRecord": _record_schema(), "FieldError": FIELD_ERROR, **_assessment_schemas(),
    "FhirResource": FHIR_RESOURCE,
    "AssessmentInput": {"anyOf": [_ref("PatientRecord"), _ref("FhirResource"), {
        "type": "array", "items": _ref("FhirResource"),
        "maxItems": DEFAULTS["FHIR_MAX_RESOURCES"],
        "description": "At most FHIR_MAX_RESOURCES resources (default "
                       f"{DEFAULTS['FHIR_MAX_RESOURCES']}), as in a Bundle's entry"}]},
    "Error": _obj(["error"], error=_obj(["code", "message"], code={"type": "string"},
                                         message={"type": "string"},
                                         errors={"type": "array", "items": _ref("FieldError")})),
    "OperationOutcome": _obj(["resourceType", "issue"],
                             resourceType={"const": "OperationOutcome"},
                             issue={"type": "array", "minItems": 1, "items": _obj(
                                 ["severity", "code"], severity={"type": "string"},
                                 code={"type": "string"})}),
    "RiskAssessment": _obj(["resourceType", "status", "subject"],
                           resourceType={"const": "RiskAssessment"},
                           status={"const": "final"}, subject={"type": "object"},
                           prediction={"type": "array", "items": _obj(
                               ["outcome"],
                               outcome={"type": "object"},
                               probabilityDecimal={"type": "number", "minimum": 0, "maximum": 1},
                               qualitativeRisk={"type": "object"})}),
    "Card": CARD, "HookRequest": HOOK_REQUEST, "Feedback": FEEDBACK,
}


def _content(schema: dict[str, Any], *types: str) -> dict[str, Any]:
    return {t: {"schema": schema} for t in types or (JSON,)}


def _errors(*statuses: int, fhir: bool = False) -> dict[str, Any]:
    """Documented error responses: JSON errors, or OperationOutcomes on FHIR-facing routes."""
    text = {400: "Not valid JSON, or a required request field is missing",
            401: "No valid bearer token (no detail given)", 404: "Not found",
            412: "Required data was neither prefetched nor fetchable",
            413: "Body larger than the configured cap", 415: "Not application/json",
            422: "The input breaks the feature contract; every broken rule is named",
            503: "No verified model loaded, or the store is unavailable"}
    schema = _ref("OperationOutcome") if fhir else _ref("Error")
    types = (JSON, FHIR) if fhir else (JSON,)
    alt = {} if fhir else {FHIR: {"schema": _ref("OperationOutcome")}}
    return {str(s): {"description": text[s], "content": {**_content(schema, *types), **alt}}
            for s in statuses}


def _op(summary: str, responses: dict[str, Any], body: dict[str, Any] | None = None,
        public: bool = False, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if public:
        op["security"] = []
    return op


def _ok(schema: dict[str, Any], description: str = "OK", *types: str,
        status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": _content(schema, *types)}}


def _operation_id(method: str, path: str) -> str:
    """A stable operationId from the method and path: ``get`` + ``/fhir/RiskAssessment/{aid}``
    -> ``getFhirRiskAssessmentByAid``."""
    words = [method.lower()]
    for part in path.strip("/").replace(".", "-").split("/"):
        if part.startswith("{"):
            words.append("By" + part.strip("{}").replace("_", " ").title().replace(" ", ""))
        elif part:
            words.append("".join(w[:1].upper() + w[1:] for w in part.replace("_", "-").split("-")))
    return "".join(words) or method


_FHIR_ID = [{"name": "aid", "in": "path", "required": True, "schema": {"type": "string"}}]
_URL_PARAM = [{"name": "url", "in": "query", "required": False,
               "schema": {"type": "string"}, "description": "A canonical URL (url|version allowed)"}]


def _fhir_paths() -> dict[str, Any]:
    """The FHIR read-back and terminology routes (:mod:`service.routes.fhir`)."""
    ok = _ok(FHIR_RESOURCE, "OK", FHIR)
    return {
        "/fhir": {"get": _op("The CapabilityStatement (the FHIR base)", ok, public=True)},
        "/fhir/metadata": {"get": _op("The CapabilityStatement (FHIR R4 4.0.1)", ok,
                                      public=True)},
        "/fhir/RiskAssessment/{aid}": {"get": _op(
            "A stored assessment as a FHIR RiskAssessment",
            {**_ok(_ref("RiskAssessment"), "OK", FHIR), **_errors(401, 404, 503, fhir=True)},
            parameters=_FHIR_ID)},
        "/fhir/Questionnaire": {"get": _op("Questionnaires by url (a searchset Bundle)", ok,
                                           public=True, parameters=_URL_PARAM)},
        "/fhir/CodeSystem": {"get": _op("Local CodeSystems by url (a searchset Bundle)", ok,
                                        public=True, parameters=_URL_PARAM)},
        "/fhir/CodeSystem/{cid}": {"get": _op(
            "A local CodeSystem at the path of its canonical URL",
            {**ok, **_errors(404, fhir=True)}, public=True,
            parameters=[{"name": "cid", "in": "path", "required": True,
                         "schema": {"type": "string"}}])},
        "/fhir/ValueSet/override-reasons": {"get": _op(
            "The override reasons of the cards (a ValueSet)", ok, public=True)},
    }


EXAMPLE_RECORD = {"patient_id": "example-1", "complaints": ["pfp"], "age_years": 29,
                  "sex": "female", "activity_profile": "runner", "side": "right",
                  "pain_worse_single_leg_loading": True,
                  "hip_abduction_left_nm_per_kg": 1.5, "hip_abduction_right_nm_per_kg": 1.1}
EXAMPLE_HOOK = {
    "hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "context": {"userId": "Practitioner/dr-1", "patientId": "p1"},
    "prefetch": {
        "patient": {"resourceType": "Patient", "id": "p1", "gender": "female",
                    "birthDate": "1996-04-01"},
        "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
            "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "https://gmed-cds.org/fhir/CodeSystem/complaints",
                                 "code": "pfp"}]}}}]},
        "observations": None, "intake": None}}


def _add_examples(paths: dict[str, Any]) -> None:
    """Request examples (an integrator's first call; examples/ has complete ones)."""
    hook = paths["/cds-services/{service_id}"]["post"]["requestBody"]["content"][JSON]
    hook["examples"] = {"patient-view": {"summary": "patient-view with prefetch",
                                         "value": EXAMPLE_HOOK}}
    assess = paths["/v1/assessments"]["post"]["requestBody"]["content"][JSON]
    assess["examples"] = {"record": {"summary": "A patient record (the contract's JSON)",
                                     "value": EXAMPLE_RECORD}}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    body_in = _content(_ref("AssessmentInput"), JSON, FHIR)
    service_id = [{"name": "service_id", "in": "path", "required": True,
                   "schema": {"enum": ["gmed-driver", "gmed-driver-encounter"]}}]
    outcome_in = _obj(["assessment_id", "complaint", "hip_driver"],
                      assessment_id={"type": "string"}, complaint={"enum": list(ROWS.allowed)},
                      hip_driver={"type": "boolean"},
                      confirmed_on={"type": "string", "format": "date"})
    outcome_in["additionalProperties"] = False
    batch_result = _obj(["index", "status"], index={"type": "integer"},
                        status={"enum": [201, 422]}, id={"type": "string"},
                        assessment=_ref("Assessment"),
                        errors={"type": "array", "items": _ref("FieldError")})
    batch_out = _obj(["results"], results={"type": "array", "items": batch_result})
    text = {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}
    paths = {
        "/cds-services": {"get": _op(
            "CDS Hooks discovery", {**_ok(_obj(["services"], services={"type": "array"})),
                                    **_errors(401, fhir=True)})},
        "/cds-services/{service_id}": {"post": _op(
            "Call the service for a hook (patient-view or encounter-start)",
            {**_ok(_obj(["cards"], cards={"type": "array", "items": _ref("Card")})),
             **_errors(400, 401, 404, 412, 413, 415, 422, 503, fhir=True)},
            _content(_ref("HookRequest")), parameters=service_id)},
        "/cds-services/{service_id}/feedback": {"post": _op(
            "Feedback on cards (accepted / overridden)",
            {**_ok(_obj(["stored"], stored={"type": "integer"})),
             **_errors(400, 401, 404, 413, 415, 422, 503, fhir=True)},
            _content(_ref("Feedback")), parameters=service_id)},
        "/v1/assessments": {"post": _op(
            "Assess one patient (record or FHIR); Accept: application/fhir+json for a "
            "RiskAssessment whose probabilityDecimal is the calibrated probability (0-1) that "
            "hip abductor weakness drives the complaint",
            {"201": {"description": "Assessed and stored",
                     "headers": {"Location": {"schema": {"type": "string"}}},
                     "content": {JSON: {"schema": _ref("Assessment")},
                                 FHIR: {"schema": _ref("RiskAssessment")}}},
             **_errors(400, 401, 413, 415, 422, 503)}, body_in)},
        "/v1/assessments/{aid}": {"get": _op(
            "A stored assessment (a RiskAssessment with Accept: application/fhir+json)",
            {"200": {"description": "OK", "content": {
                JSON: {"schema": _ref("Assessment")}, FHIR: {"schema": _ref("RiskAssessment")}}},
             **_errors(401, 404)},
            parameters=[{"name": "aid", "in": "path", "required": True,
                         "schema": {"type": "string"}}])},
        "/v1/assessments/batch": {"post": _op(
            "Assess many records; a record that breaks the contract fails alone",
            {"201": {"description": "All-or-nothing in the store: the assessments of every "
                                    "valid record were committed in one transaction (a 503 "
                                    "means none was stored; retry the whole batch)",
                     "content": _content(batch_out)},
             **_ok(batch_out, "No record was valid: nothing was stored"),
             **_errors(400, 401, 413, 415, 422, 503)},
            _content(_obj(["records"], records={
                "type": "array", "minItems": 1, "maxItems": DEFAULTS["BATCH_MAX"],
                "description": "At most BATCH_MAX records (default "
                               f"{DEFAULTS['BATCH_MAX']})",
                "items": _ref("AssessmentInput")})))},
        "/v1/model": {"get": _op("Model metadata, metrics and model card facts",
                                 {**_ok(_obj(["id", "version", "trained_on"])),
                                  **_errors(401, 503)})},
        "/v1/model/card": {"get": _op("The model card (markdown)", {
            "200": {"description": "OK", "content": {"text/markdown": {
                "schema": {"type": "string"}}}}, **_errors(404, 503)}, public=True)},
        "/v1/features": {"get": _op("The feature contract", {**_ok(_obj(
            ["contract_hash", "features", "record_schema"])), **_errors(401)})},
        "/v1/outcomes": {"post": _op(
            "Record the confirmed outcome of an assessed complaint (for retraining)",
            {**_ok(_obj(["id"], id={"type": "string"}), "Stored", status="201"),
             **_errors(400, 401, 404, 413, 415, 422, 503)}, _content(outcome_in))},
        "/fhir/Questionnaire/gmed-intake": {"get": _op(
            "The intake Questionnaire (FHIR R4), generated from the contract",
            _ok(FHIR_RESOURCE, "OK", FHIR), public=True)},
        "/fhir/CodeSystem/findings": {"get": _op(
            "The local CodeSystem of findings", _ok(FHIR_RESOURCE, "OK", FHIR), public=True)},
        **_fhir_paths(),
        "/healthz": {"get": _op("Liveness", _ok(_obj(["status"])), public=True)},
        "/readyz": {"get": _op("Readiness: a verified model is loaded and the store answers", {
            **_ok(_obj(["status", "checks"])),
            "503": {"description": "Not ready", "content": _content(_obj(["status", "checks"]))}},
            public=True)},
        "/metrics": {"get": _op(
            "Prometheus metrics (bearer METRICS_TOKEN; closed in production without one)",
            {**text, "401": {"description": "No valid metrics token (no detail given)",
                             "content": _content(_ref("Error"))}},
            security=[{"metricsToken": []}])},
        "/ops/ping": {"get": _op("Constant answer (benchmark baseline)", _ok(_obj(["status"])),
                                 public=True)},
        "/openapi.json": {"get": _op("This document", _ok({"type": "object"}), public=True)},
    }
    for path, methods in paths.items():
        for method, op in methods.items():
            op.setdefault("operationId", _operation_id(method, path))
    _add_examples(paths)
    return {
        "openapi": "3.1.0",
        "servers": [{"url": "/", "description": "The host serving this document (its BASE_URL "
                                               "in production)"}],
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "Gluteus medius driver CDS", "version": "1",
                 "description": "CDS Hooks 2.0, FHIR R4 and JSON API. Decision support only; "
                                "the shipped model is trained on simulated data."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {"cdsHooksJwt": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "CDS Hooks JWT: ES384 or RS384, iss allowlisted, aud = endpoint URL, "
                           "exp/iat/jti required, jti single-use"},
            "metricsToken": {"type": "http", "scheme": "bearer",
                             "description": "The configured METRICS_TOKEN, for /metrics only"}}},
        "security": [{"cdsHooksJwt": []}],
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())
