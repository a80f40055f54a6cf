"""The local code systems and value sets: every canonical an emitted resource names, served.

Each CodeSystem is generated from the one place that defines its codes: the contract
(:mod:`cds.features`: complaints and every category feature's answers, findings), the cards
(:mod:`service.ehr.cards`: topics, override reasons), the safety checks (:mod:`cds.safety`: warning
codes), the loaded model (models) and :data:`RULES` (the rules an error names; a test checks that
every rule raised in the code is here). ``GET /fhir/CodeSystem/<id>`` serves them
(:mod:`service.routes.fhir`); the canonical ``https://gmed-cds.org/fhir/CodeSystem/<id>`` resolves
to that path on the service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cds.codes import UNCODED
from cds.features import COMPLAINT_SYSTEM, FEATURES, LOCAL_SYSTEM, ROWS, contract_hash
from cds.fhir import BASE, SET_ASIDE, answer_system
from cds.fhir import findings_code_system as _model_findings
from cds.narrative import with_narrative
from cds.safety import NOT_APPLICABLE, OUT_OF_POPULATION

from ..serving.model_host import get_model
from .cards import OVERRIDE_REASONS, OVERRIDE_SYSTEM, TOPIC
from .orders import PROCEDURE_SYSTEM, procedure_concepts

RULES_SYSTEM = f"{BASE}/CodeSystem/rules"
MODELS_SYSTEM = f"{BASE}/CodeSystem/models"
WARNINGS_SYSTEM = f"{BASE}/CodeSystem/warnings"
OVERRIDE_VALUE_SET = f"{BASE}/ValueSet/override-reasons"

# The rule an error names (FieldError.rule; OperationOutcome issue details). Keep in step with
# the code: tests/test_ehr_terminology.py fails on a rule raised but not listed here.
RULES: dict[str, str] = {
    "additionalProperties": "A field the contract (or the request format) does not know",
    "dependentRequired": "A value that needs another one with it (a dynamometer force needs the "
                         "lever arm and body mass)",
    "oneOf": "Two values given where one is allowed (a torque and a force for the same side)",
    "assessed": "The complaint was not one of the assessment's complaints",
    "encoding": "The body's encoding is not supported",
    "enum": "The value is not one of the allowed values",
    "format": "The value is not in the required format (a date, a FHIR date)",
    "hook": "The request names another CDS Hooks hook than the service answers",
    "integer": "A whole number is required",
    "json": "The body is not valid JSON",
    "maxDepth": "The JSON body is nested too deeply",
    "maxErrors": "More errors than are listed: the count of the rest",
    "maxItems": "Too many items",
    "maxResources": "Too many FHIR resources in one request",
    "maximum": "Above the contract's maximum",
    "minItems": "Too few items",
    "minimum": "Below the contract's minimum",
    "questionnaire": "The QuestionnaireResponse answers another Questionnaire",
    "required": "A required field or resource is missing",
    "subject": "The data is about another patient",
    "type": "The value has the wrong type",
    "uniqueItems": "An item is repeated",
    "unit": "The unit is not UCUM, or cannot be converted into the contract's unit",
    "unknown-card": "No card of this service has this uuid",
}
WARNINGS: dict[str, str] = {
    OUT_OF_POPULATION: "A value lies outside the population the model was trained on",
    NOT_APPLICABLE: "A finding was recorded where it does not apply; the model set it aside",
    SET_ASIDE: "A FHIR resource with an unusable value was set aside; the rest was assessed",
}


def _code_system(cid: str, url: str, title: str, concepts: list[dict[str, Any]],
                 version: str | None = None,
                 properties: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    name = "Gmed" + "".join(part.capitalize() for part in cid.replace("_", "-").split("-"))
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem", "id": cid.replace("_", "-"), "url": url,
        "version": version or contract_hash()[:12], "name": name, "title": title,
        "status": "active", "experimental": False, "publisher": "gmed-cds",
        "description": title, "caseSensitive": True, "content": "complete",
        "count": len(concepts)}
    if properties:
        resource["property"] = properties
    resource["concept"] = concepts
    return with_narrative(resource)


STANDARD_CODING = "standard-coding"
NO_STANDARD_CODE = "no-standard-code"


def findings_code_system() -> dict[str, Any]:
    """Every finding of the contract (code = feature name), with its LOINC or SNOMED CT coding
    where one exists (property ``standard-coding``) or, where none does, why
    (property ``no-standard-code``, from :data:`cds.codes.UNCODED`); plus the model's own
    result codes (hip driver, referral)."""
    results = [c for c in _model_findings()["concept"] if c["code"] not in {
        f.name for f in FEATURES}]
    concepts: list[dict[str, Any]] = list(results)
    for f in FEATURES:  # "complaints" is the question; its answers have their own system
        concept: dict[str, Any] = {"code": f.name, "display": f.label}
        if f.code is not None:
            concept["property"] = [{"code": STANDARD_CODING, "valueCoding": {
                "system": f.code.system, "code": f.code.code, "display": f.code.display}}]
        else:
            concept["property"] = [{"code": NO_STANDARD_CODE, "valueString": UNCODED[f.name]}]
        concepts.append(concept)
    return _code_system("findings", LOCAL_SYSTEM,
                        "Findings of the gmed-cds contract, with their standard codes", concepts,
                        properties=[
                            {"code": STANDARD_CODING, "type": "Coding",
                             "description": "The finding's LOINC or SNOMED CT code; emitted "
                                            "resources carry it alongside the local code"},
                            {"code": NO_STANDARD_CODE, "type": "string",
                             "description": "The finding has no LOINC or SNOMED CT code that "
                                            "could be verified, and why; the local code only"}])


def _answers(system: str) -> dict[str, Any]:
    f = next(f for f in FEATURES if f.kind == "category" and answer_system(f) == system)
    labels = f.allowed_labels or f.allowed
    return _code_system(f.name, system, f"{f.label}: the answers of the intake Questionnaire",
                        [{"code": a, "display": lab} for a, lab in zip(f.allowed, labels,
                                                                      strict=True)])


def _complaints() -> dict[str, Any]:
    labels = ROWS.allowed_labels or ROWS.allowed
    return _code_system("complaints", COMPLAINT_SYSTEM, "Presenting complaints the model covers",
                        [{"code": a, "display": lab} for a, lab in zip(ROWS.allowed, labels,
                                                                      strict=True)])


def _models() -> dict[str, Any]:
    model = get_model()
    return _code_system("models", MODELS_SYSTEM, "Models of the gmed-cds service", [{
        "code": model.id, "display": model.id,
        "definition": f"Gluteus medius driver model (version {model.version}, trained on "
                      f"{model.trained_on}); model card: /v1/model/card"}])


def _simple(cid: str, url: str, title: str, table: dict[str, str]) -> Callable[[], dict[str, Any]]:
    return lambda: _code_system(cid, url, title, [{"code": c, "display": d}
                                                  for c, d in table.items()])


def code_systems() -> dict[str, Callable[[], dict[str, Any]]]:
    """Every local CodeSystem by its canonical URL (built on demand)."""
    out: dict[str, Callable[[], dict[str, Any]]] = {
        COMPLAINT_SYSTEM: _complaints,
        LOCAL_SYSTEM: findings_code_system,
        MODELS_SYSTEM: _models,
        RULES_SYSTEM: _simple("rules", RULES_SYSTEM, "Rules a request error names", RULES),
        WARNINGS_SYSTEM: _simple("warnings", WARNINGS_SYSTEM, "Warnings of an assessment",
                                 WARNINGS),
        PROCEDURE_SYSTEM: lambda: _simple("procedures", PROCEDURE_SYSTEM,
                                          "Clinical tests the cards propose (orderables)",
                                          procedure_concepts())(),
        TOPIC["system"]: _simple("topics", TOPIC["system"], "Topics of the service's cards",
                                 {TOPIC["code"]: TOPIC["display"]}),
        OVERRIDE_SYSTEM: _simple("override-reasons", OVERRIDE_SYSTEM,
                                 "Why a clinician overrode a card",
                                 {r["code"]: r["display"] for r in OVERRIDE_REASONS}),
    }
    for f in FEATURES:
        if f.kind == "category" and f.role != "rows":
            system = answer_system(f)
            out[system] = lambda system=system: _answers(system)  # type: ignore[misc]
    return out


def code_system(cid: str) -> dict[str, Any] | None:
    """The CodeSystem served at ``/fhir/CodeSystem/<cid>`` (the tail of its canonical, or its
    id), or ``None``."""
    systems = code_systems()
    build = systems.get(f"{BASE}/CodeSystem/{cid}") or systems.get(
        f"{BASE}/CodeSystem/{cid.replace('-', '_')}")  # the id of activity_profile's system
    return build() if build else None


def override_value_set() -> dict[str, Any]:
    """The override reasons as a ValueSet (CDS Hooks 2.0 ``overrideReasons`` codes)."""
    return with_narrative({
        "resourceType": "ValueSet", "id": "override-reasons", "url": OVERRIDE_VALUE_SET,
        "version": contract_hash()[:12], "name": "GmedOverrideReasons",
        "title": "Why a clinician overrode a gmed-cds card", "status": "active",
        "experimental": False,
        "compose": {"include": [{"system": OVERRIDE_SYSTEM}]},
    })
