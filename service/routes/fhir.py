"""The FHIR R4 face of the service (``/fhir``): what an EHR reads back.

* ``GET /fhir/metadata``: the CapabilityStatement (what is served, how, and its security);
* ``GET /fhir/RiskAssessment/<id>``: a stored assessment as a RiskAssessment (token required:
  :mod:`service.security.auth` protects it like ``/v1``); ``POST /v1/assessments``'s ``Location`` answers
  the same when asked with ``Accept: application/fhir+json``;
* ``GET /fhir/Questionnaire?url=...``, ``GET /fhir/CodeSystem?url=...``: searchset Bundles;
* ``GET /fhir/CodeSystem/<id>`` and ``GET /fhir/ValueSet/override-reasons``: every local
  canonical the emitted resources name (:mod:`service.ehr.terminology`).

The stored row keeps only the patient's pseudonym (never the caller's id), so a RiskAssessment
read back names its subject by that pseudonym.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from flask import Blueprint, Response, jsonify, request

from cds.assessment import Assessment
from cds.fhir.codes import QUESTIONNAIRE_URL
from cds.fhir.publish import intake_questionnaire
from cds.narrative import with_narrative
from cds.render.risk_assessment import risk_assessment

from ..config import base_url
from ..ehr.terminology import OVERRIDE_VALUE_SET, code_system, code_systems, override_value_set
from ..http.errors import FHIR_JSON, NotFound
from ..security.auth import issuer
from ..store import get_store

bp = Blueprint("fhir", __name__)
FHIR_VERSION = "4.0.1"
SOFTWARE_VERSION = "1"


def fhir_response(resource: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(resource)
    response.mimetype = FHIR_JSON
    response.status_code = status
    return response


def stored_risk_assessment(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored assessment (its store row) as a RiskAssessment."""
    created = row["created_at"]
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # stored in UTC; SQLite returns it naive
    return risk_assessment(Assessment.from_dict(row["result"]), rid=row["id"], pseudonym=row["patient_ref"],
                           occurrence=created.isoformat(timespec="seconds") if created else None,
                           model_card_url=f"{base_url()}/v1/model/card")


@bp.get("/fhir/RiskAssessment/<aid>")
def read_risk_assessment(aid: str) -> Response:
    """A stored assessment of this caller's issuer as a FHIR RiskAssessment (another issuer's
    id is not confirmed to exist: 404)."""
    row = get_store().get_assessment(aid)
    if row is None or row.get("issuer") != issuer():
        raise NotFound("No assessment with this id")
    return fhir_response(stored_risk_assessment(row))


def _searchset(resources: list[dict[str, Any]]) -> Response:
    base = base_url()
    return fhir_response({
        "resourceType": "Bundle", "type": "searchset", "total": len(resources),
        "link": [{"relation": "self", "url": f"{base}{request.full_path.rstrip('?')}"}],
        "entry": [{"fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}", "resource": r,
                   "search": {"mode": "match"}} for r in resources]})


def _wanted(url: str | None, canonical: str) -> bool:
    """Does the ``url`` search parameter (``url|version`` allowed) match ``canonical``?"""
    return url is None or url.split("|")[0] == canonical


@bp.get("/fhir/Questionnaire")
def search_questionnaire() -> Response:
    """Questionnaires by ``url`` (there is one: gmed-intake)."""
    url = request.args.get("url")
    return _searchset([intake_questionnaire()] if _wanted(url, QUESTIONNAIRE_URL) else [])


@bp.get("/fhir/CodeSystem")
def search_code_system() -> Response:
    """Local CodeSystems by ``url``."""
    url = request.args.get("url")
    return _searchset([build() for canonical, build in code_systems().items()
                       if _wanted(url, canonical)])


@bp.get("/fhir/CodeSystem/<cid>")
def read_code_system(cid: str) -> Response:
    """A local CodeSystem, at the path of its canonical URL."""
    resource = code_system(cid)
    if resource is None:
        raise NotFound(f"No CodeSystem '{cid[:64]}'")
    return fhir_response(resource)


@bp.get("/fhir/ValueSet/override-reasons")
def read_override_reasons() -> Response:
    """The override reasons of the cards, as a ValueSet."""
    return fhir_response(override_value_set())


def _resource(kind: str, interactions: tuple[str, ...], doc: str,
              search: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "documentation": doc,
                           "interaction": [{"code": i} for i in interactions]}
    if search:
        out["searchParam"] = [{"name": s, "type": "uri"} for s in search]
    return out


def capability_statement() -> dict[str, Any]:
    """What this server serves, in FHIR R4 terms (only what it actually does)."""
    base = base_url()
    return with_narrative({
        "resourceType": "CapabilityStatement", "id": "gmed-cds",
        "url": f"{base}/fhir/metadata", "version": SOFTWARE_VERSION, "name": "GmedCds",
        "title": "gmed-cds FHIR capabilities", "status": "active", "experimental": False,
        "date": "2026-12-03", "publisher": "gmed-cds", "kind": "instance",
        "description": "Reads back assessments as RiskAssessments and publishes the intake "
                       "Questionnaire and the local terminology. Assessments are created by "
                       "CDS Hooks calls or POST /v1/assessments.",
        "software": {"name": "gmed-cds", "version": SOFTWARE_VERSION},
        "implementation": {"description": "gmed-cds", "url": f"{base}/fhir"},
        "fhirVersion": FHIR_VERSION, "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": f"Override reasons: {OVERRIDE_VALUE_SET}",
            "security": {"cors": True, "description":
                         "RiskAssessment needs a signed JWT bearer token (CDS Hooks 2.0 client "
                         "authentication: ES384/RS384, issuer allowlisted, aud = the URL called, "
                         "single-use jti). The Questionnaire, the terminology and this "
                         "statement are public."},
            "resource": [
                _resource("RiskAssessment", ("read",), "An assessment by its id"),
                _resource("Questionnaire", ("read", "search-type"), "gmed-intake", ("url",)),
                _resource("CodeSystem", ("read", "search-type"), "The local code systems",
                          ("url",)),
                _resource("ValueSet", ("read",), "override-reasons"),
            ]}],
    })


@bp.get("/fhir")
@bp.get("/fhir/metadata")
def metadata() -> Response:
    """The CapabilityStatement."""
    return fhir_response(capability_statement())
