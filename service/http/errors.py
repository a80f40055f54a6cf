"""The one place where errors become responses.

Typed errors carry their status (:class:`cds.errors.CdsError` and the service's subclasses below);
werkzeug's ``HTTPException`` covers routing, 405, 413 and 415. The body depends on the audience:

* CDS Hooks (``/cds-services``) and FHIR (``/fhir``) routes, and any client that asks with
  ``Accept: application/fhir+json``, get a FHIR ``OperationOutcome`` (one issue per broken rule,
  ``expression`` = the field);
* everything else gets ``{"error": {"code", "message", "errors": [{"field", "rule", "message"}]}}``.

401 answers carry no detail. Anything unexpected is a 500 with no detail, logged by type only:
a client input that reaches it is a bug, and a test hunts for them (schemathesis).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from cds.errors import CdsError, ErrorList, FieldError, InvalidRecord
from cds.narrative import with_narrative

log = logging.getLogger("service")

FHIR_JSON = "application/fhir+json"
# FHIR issue-type codes by HTTP status (http://hl7.org/fhir/issue-type)
_ISSUE_CODE = {400: "structure", 401: "login", 403: "forbidden", 404: "not-found",
               405: "not-supported", 409: "conflict", 412: "incomplete", 413: "too-costly",
               415: "not-supported", 422: "invalid", 429: "throttled", 503: "transient"}
RETRY_AFTER_S = 2  # on every 503: the deadline, the store, the model
_DEADLINE_MESSAGE = "The request did not finish within its deadline; nothing was stored. Retry."
_RULE_ISSUE = {"required": "required", "unit": "value", "enum": "code-invalid",
               "minimum": "value", "maximum": "value", "subject": "business-rule"}


class ServiceError(CdsError):
    """An error of the service layer; ``errors`` name the fields and rules when there are any
    (bounded as :class:`cds.errors.ErrorList` bounds them)."""

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors = ErrorList(errors or ()).report()


class BadRequest(ServiceError):
    """The request is not shaped as the endpoint requires (JSON, CDS Hooks request fields)."""

    status = 400
    code = "bad-request"


class Unauthorized(ServiceError):
    """No valid bearer token. The response says nothing more, on purpose."""

    status = 401
    code = "unauthorized"


class NotFound(ServiceError):
    status = 404
    code = "not-found"


class PreconditionFailed(ServiceError):
    """CDS Hooks: data the service needs is neither prefetched nor fetchable (412)."""

    status = 412
    code = "precondition-failed"


class TooCostly(ServiceError):
    """The request is within the byte cap but asks for too much work (too many FHIR resources)."""

    status = 413
    code = "too-costly"


class DeadlineExceeded(ServiceError):
    """The request outlived ``REQUEST_DEADLINE``; nothing of it was stored (see
    :mod:`service.http.deadline`). The client may retry after ``Retry-After`` seconds."""

    status = 503
    code = "deadline-exceeded"

    def __init__(self, stage: str) -> None:
        super().__init__(f"deadline exceeded before stage {stage}")
        self.stage = stage


class StoreUnavailable(ServiceError):
    """The database did not take a write; the client is not told it succeeded."""

    status = 503
    code = "store-unavailable"


def wants_fhir() -> bool:
    """Does this request get FHIR OperationOutcomes (by route or by ``Accept``)?"""
    path = request.path
    if path.startswith(("/cds-services", "/fhir/")):
        return True
    if "fhir" not in request.headers.get("Accept", ""):
        return False  # the common case, without parsing Accept: JSON wins every wildcard
    best = request.accept_mimetypes.best_match(["application/json", FHIR_JSON])
    return best == FHIR_JSON and request.accept_mimetypes[FHIR_JSON] > 0


def operation_outcome(status: int, message: str, errors: list[FieldError],
                      issue_code: str | None = None) -> dict[str, Any]:
    """An OperationOutcome: one issue per broken rule, or one for the whole error (its code
    ``issue_code``, or the status's)."""
    code = issue_code or _ISSUE_CODE.get(status, "exception" if status >= 500 else "invalid")
    issues: list[dict[str, Any]] = [
        {"severity": "error", "code": _RULE_ISSUE.get(e.rule, code),
         "details": {"coding": [{"system": "https://gmed-cds.org/fhir/CodeSystem/rules",
                                 "code": e.rule}], "text": e.message},
         "diagnostics": e.message, "expression": [e.field]}
        for e in errors]
    if not issues:
        issue: dict[str, Any] = {"severity": "error", "code": code}
        if message:
            issue["diagnostics"] = message
        issues.append(issue)
    outcome = {"resourceType": "OperationOutcome", "issue": issues}
    if status == 401:
        return outcome  # no detail, on purpose: not even a narrative
    return with_narrative(outcome, f"HTTP {status}: {message}" if message else f"HTTP {status}")


def error_response(status: int, code: str, message: str,
                   errors: list[FieldError] | None = None, issue_code: str | None = None
                   ) -> Response:
    """The response for an error, in the format this request's audience reads."""
    errors = errors or []
    if wants_fhir():
        response = jsonify(operation_outcome(status, message, errors, issue_code))
        response.mimetype = FHIR_JSON
    else:
        body: dict[str, Any] = {"code": code, "message": message}
        if errors:
            body["errors"] = [e.to_dict() for e in errors]
        response = jsonify({"error": body})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    elif status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _on_cds_error(e: CdsError) -> Response:
    errors = list(getattr(e, "errors", []) or [])
    if e.status == 401:
        return error_response(401, e.code, "")
    if isinstance(e, DeadlineExceeded):
        log.warning("deadline exceeded", extra={"code": e.code, "reason": e.stage})
        return error_response(503, e.code, _DEADLINE_MESSAGE, issue_code="timeout")
    if isinstance(e, InvalidRecord):
        return error_response(e.status, e.code, "The record breaks the feature contract", errors)
    if e.status >= 500:
        log.warning("service unavailable", extra={"error": type(e).__name__, "code": e.code})
        # model and store failures name no path or detail to the client
        return error_response(e.status, e.code, "The service is not ready; try again later")
    return error_response(e.status, e.code, str(e), errors)


def _on_http_error(e: HTTPException) -> Response:
    status = e.code or 500
    code = (e.name or "error").lower().replace(" ", "-")
    response = error_response(status, code, e.description or "")
    if status == 405 and e.response is None:
        allowed = getattr(e, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def _on_unexpected(e: Exception) -> Response:
    log.error("unhandled error", extra={"error": type(e).__name__})
    return error_response(500, "internal", "Internal error")


def init_app(app: Flask) -> None:
    """Register the handlers: typed errors, HTTP errors, and the last-resort 500."""
    app.register_error_handler(CdsError, _on_cds_error)
    app.register_error_handler(HTTPException, _on_http_error)
    app.register_error_handler(Exception, _on_unexpected)
