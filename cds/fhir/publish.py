"""The contract published as FHIR: the intake ``Questionnaire`` and the findings ``CodeSystem``."""

from __future__ import annotations

from typing import Any

from ..contract import PROFILE_FIELD
from ..features import BY_NAME, GROUPS, LOCAL_SYSTEM, ROWS, Feature, contract_hash, record_fields
from ..narrative import with_narrative
from .codes import QUESTIONNAIRE_URL, REFERRAL_LOCAL, UCUM, answer_system


def _question(f: Feature) -> dict[str, Any]:
    item: dict[str, Any] = {"linkId": f.name, "text": f.label,
                            "code": [{"system": c.system, "code": c.code, "display": c.display}
                                     for c in f.codings],
                            "required": f.required}
    extensions: list[dict[str, Any]] = []
    if f.kind in ("boolean", "integer"):
        item["type"] = f.kind
    elif f.kind == "number":
        item["type"] = "decimal"
    else:
        item["type"] = "choice"
        labels = f.allowed_labels or f.allowed
        item["answerOption"] = [{"valueCoding": {"system": answer_system(f), "code": a,
                                                 "display": lab}}
                                for a, lab in zip(f.allowed, labels, strict=True)]
    if f.role == "rows":
        item["repeats"] = True
    if f.kind in ("integer", "number"):
        vkey = "valueInteger" if f.kind == "integer" else "valueDecimal"
        for url, bound in (("minValue", f.minimum), ("maxValue", f.maximum)):
            if bound is not None:
                value = int(bound) if f.kind == "integer" else float(bound)
                extensions.append({"url": f"http://hl7.org/fhir/StructureDefinition/{url}",
                                   vkey: value})
        if f.ucum and f.unit:
            extensions.append({"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unit",
                               "valueCoding": {"system": UCUM, "code": f.ucum, "display": f.unit}})
    if extensions:
        item["extension"] = extensions
    if f.restricted and f.role != "red_flag":
        # FHIR combines one item's conditions with a single all/any: the activity profile when
        # the finding is restricted to profiles, else its complaints (a repeating answer)
        on, answers = ((PROFILE_FIELD, f.profiles) if f.profiles is not None
                       else (ROWS.name, f.complaints))
        item["enableWhen"] = [{"question": on, "operator": "=", "answerCoding": {
            "system": answer_system(BY_NAME[on]), "code": answer}} for answer in answers]
        if len(answers) > 1:
            item["enableBehavior"] = "any"
    help_text = " ".join(t for t in (f.help, f"Reference (pain-free people): {f.reference}."
                                     if f.reference else "") if t)
    if help_text:
        item["item"] = [{"linkId": f"{f.name}.help", "type": "display", "text": help_text,
                         "extension": [{
                             "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
                             "valueCodeableConcept": {"coding": [{
                                 "system": "http://hl7.org/fhir/questionnaire-item-control",
                                 "code": "help"}]}}]}]
    return item


def intake_questionnaire() -> dict[str, Any]:
    """The FHIR R4 Questionnaire ``gmed-intake``, generated from the contract (one group per
    care setting; linkId = feature name; version = the contract hash)."""
    fields = record_fields()
    return with_narrative({
        "resourceType": "Questionnaire",
        "id": "gmed-intake",
        "url": QUESTIONNAIRE_URL,
        "version": contract_hash()[:12],
        "name": "GmedIntake",
        "title": "Gluteus medius driver assessment: intake, examination and movement findings",
        "status": "active",
        "subjectType": ["Patient"],
        "description": "Answer what is known; leave the rest blank (not assessed). Red-flag "
                       "questions route the patient to referral whatever the estimate.",
        "item": [{"linkId": group, "type": "group", "text": group.capitalize(),
                  "item": [_question(f) for f in fields if f.group == group]}
                 for group in GROUPS],
    })


def findings_code_system() -> dict[str, Any]:
    """The CodeSystem of local finding codes (code = feature name), for features without a
    standard code."""
    local = [f for f in record_fields() if f.coding.system == LOCAL_SYSTEM]
    return with_narrative({
        "resourceType": "CodeSystem", "id": "findings", "url": LOCAL_SYSTEM,
        "version": contract_hash()[:12], "name": "GmedFindings", "status": "active",
        "content": "complete", "caseSensitive": True,
        "concept": [{"code": "hip_driver",
                     "display": "Hip abductor weakness as a driver of the complaint"},
                    {"code": REFERRAL_LOCAL["code"], "display": REFERRAL_LOCAL["display"]}]
                   + [{"code": f.name, "display": f.label} for f in local],
    })
