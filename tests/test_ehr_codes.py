"""Issue 14: every code of the contract exists and carries its system's own display; every
finding has a standard code or a stated reason; every emitted coding validates; every proposed
test is orderable by code.

Displays as in the ICD-10-CM tabular list (FY2022 onwards): M22.2X3 does not exist, M54.5 has not
been valid since October 2021, and M22.2- is "Patellofemoral disorders" (not chondromalacia)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds.codes import ORDERABLES, UNCODED
from cds.features import (
    BY_NAME,
    FEATURES,
    ICD10CM,
    LOCAL_SYSTEM,
    LOINC,
    ROWS,
    SNOMED,
    Coding,
    record_fields,
)
from cds.fhir import record_from_fhir
from service.ehr.orders import PROCEDURE_SYSTEM, order_code
from service.ehr.terminology import NO_STANDARD_CODE, STANDARD_CODING

ICD10CM_DISPLAYS = {
    "M22.2X1": "Patellofemoral disorders, right knee",
    "M22.2X2": "Patellofemoral disorders, left knee",
    "M22.2X9": "Patellofemoral disorders, unspecified knee",
    "M76.30": "Iliotibial band syndrome, unspecified leg",
    "M76.31": "Iliotibial band syndrome, right leg",
    "M76.32": "Iliotibial band syndrome, left leg",
    "M54.50": "Low back pain, unspecified",
    "M54.51": "Vertebrogenic low back pain",
    "M54.59": "Other low back pain",
}


def test_every_icd10cm_complaint_code_is_valid_with_its_own_display() -> None:
    used = {c.code: c.display for codes in ROWS.allowed_codes for c in codes
            if c.system == ICD10CM}
    assert set(used) <= set(ICD10CM_DISPLAYS), set(used) - set(ICD10CM_DISPLAYS)
    assert used == {code: ICD10CM_DISPLAYS[code] for code in used}


# --------------------------------------------------------------------- LOINC and SNOMED CT
# Every standard code the product emits, with the display its system uses (LOINC long common or
# short name; SNOMED CT fully specified name or preferred term) and where it was checked: each
# code and display was found together in published FHIR content (IGs, profiles, terminology
# tables), never guessed. A code added to the contract fails here until it is added, sourced.
STANDARD_DISPLAYS: dict[tuple[str, str], tuple[str, str]] = {
    (LOINC, "30525-0"): ("Age", "LOINC 30525-0 'Age' (HL7v2 OBX NM Age LN; Questionnaire age)"),
    (LOINC, "46098-0"): ("Sex", "IMMZ / SMART guidelines IG: $LNC#46098-0 \"Sex\""),
    (LOINC, "39156-5"): ("Body mass index (BMI) [Ratio]", "FHIR R4 vital-signs profile bmi"),
    (LOINC, "29463-7"): ("Body weight", "FHIR R4 vital-signs profile bodyweight"),
    (LOINC, "72514-3"): ("Pain severity - 0-10 verbal numeric rating [Score] - Reported",
                         "EMS IG pain component: $LOINC#72514-3 with this display"),
    (SNOMED, "404684003"): ("Clinical finding",
                            "FHIR R5 ValueSet clinical-findings: is-a 404684003 Clinical finding"),
    (SNOMED, "279039007"): ("Low back pain", "SNOMED CT 279039007 |Low back pain|"),
    (SNOMED, "38013005"): ("Immunosuppression (finding)",
                           "IG Condition examples: $sct#38013005 \"Immunosuppression (finding)\""),
    (SNOMED, "386661006"): ("Fever (finding)",
                            "FHIR IG value set: 386661006 Fever (finding) (SNOMED-CT)"),
    (SNOMED, "422868009"): ("Unexplained weight loss (finding)",
                            "SNOMED International editorial guide: 422868009 |Unexplained "
                            "weight loss (finding)|"),
    (SNOMED, "266987004"): ("History of malignant neoplasm (situation)",
                            "Medizininformatik-Initiative IG example: $SCT#266987004"),
    (SNOMED, "228388006"): ("Intravenous drug user (finding)",
                            "RKI questionnaire IG and HIV-screening IG: $SCT#228388006"),
    (SNOMED, "113011001"): ("Palpation (procedure)",
                            "HL7 vital-signs method value set: $sct#113011001"),
}
_LOCAL_PREFIX = "https://gmed-cds.org/fhir/CodeSystem/"


def _contract_codings() -> list[Coding]:
    out = [f.code for f in FEATURES if f.code is not None]
    out += [c for codes in ROWS.allowed_codes for c in codes if c.system in (LOINC, SNOMED)]
    out += [snomed for _, snomed in ORDERABLES.values() if snomed is not None]
    return out


def test_every_standard_code_of_the_contract_has_its_systems_display() -> None:
    for c in _contract_codings():
        assert (c.system, c.code) in STANDARD_DISPLAYS, f"unsourced code {c.system}|{c.code}"
        assert c.display == STANDARD_DISPLAYS[(c.system, c.code)][0], c


def test_every_finding_has_a_standard_code_or_a_stated_reason_not_both() -> None:
    coded = {f.name for f in FEATURES if f.code is not None and f.role != "rows"}
    uncoded = {f.name for f in FEATURES if f.code is None}
    assert set(UNCODED) == uncoded, (set(UNCODED) ^ uncoded)
    assert not coded & set(UNCODED)
    assert all(len(reason) > 40 for reason in UNCODED.values())


def test_findings_code_system_states_the_standard_code_or_why_none(app: Flask) -> None:
    cs = app.test_client().get("/fhir/CodeSystem/findings").get_json()
    assert {p["code"] for p in cs["property"]} == {STANDARD_CODING, NO_STANDARD_CODE}
    concepts = {c["code"]: c for c in cs["concept"]}
    assert cs["count"] == len(cs["concept"])
    for f in FEATURES:
        [prop] = concepts[f.name]["property"]
        if f.code is None:
            assert prop == {"code": NO_STANDARD_CODE, "valueString": UNCODED[f.name]}
        else:
            assert prop == {"code": STANDARD_CODING, "valueCoding": {
                "system": f.code.system, "code": f.code.code, "display": f.code.display}}
    assert {"hip_driver", "refer_red_flag"} <= set(concepts)  # the model's own result codes


def _served_display(client: FlaskClient, system: str, code: str) -> str | None:
    cs = client.get("/fhir/CodeSystem/" + system.removeprefix(_LOCAL_PREFIX)).get_json()
    return next((c.get("display") for c in cs.get("concept", []) if c["code"] == code), None)


def _check_coding(client: FlaskClient, coding: dict[str, Any]) -> None:
    """A coding validates: a standard code with its system's display, or a local code that the
    served CodeSystem defines, with the same display."""
    key = (coding["system"], coding["code"])
    if coding["system"].startswith(_LOCAL_PREFIX):
        assert _served_display(client, *key) == coding["display"], coding
    else:
        assert key in STANDARD_DISPLAYS, coding
        assert coding["display"] == STANDARD_DISPLAYS[key][0], coding


def test_questionnaire_items_carry_the_standard_coding_alongside_the_local_one(
        app: Flask) -> None:
    client = app.test_client()
    q = client.get("/fhir/Questionnaire/gmed-intake").get_json()
    items = {i["linkId"]: i for g in q["item"] for i in g["item"]}
    for f in record_fields():
        codes = items[f.name]["code"]
        assert codes[-1] == {"system": LOCAL_SYSTEM, "code": f.name, "display": f.label}
        if f.code is not None:
            assert codes[0]["system"] == f.code.system and codes[0]["code"] == f.code.code
        assert len(codes) == (2 if f.code is not None else 1)
        for coding in codes:
            _check_coding(client, coding)


def test_an_observation_with_either_coding_is_read() -> None:
    for coding in BY_NAME["rf_fever"].codings:
        obs = {"resourceType": "Observation", "status": "final", "valueBoolean": True,
               "code": {"coding": [{"system": coding.system, "code": coding.code}]}}
        assert record_from_fhir(obs).record == {"rf_fever": True}


# --------------------------------------------------------------------- orderables
def test_every_procedure_of_the_contract_is_orderable() -> None:
    named = {f.procedure for f in FEATURES if f.procedure}
    assert named == set(ORDERABLES), named ^ set(ORDERABLES)
    locals_ = [local for local, _ in ORDERABLES.values()]
    assert len(set(locals_)) == len(locals_)


@pytest.mark.parametrize("procedure", sorted({f.procedure for f in FEATURES if f.procedure}))
def test_each_service_request_code_is_coded_and_validates(app: Flask, procedure: str) -> None:
    code = order_code(procedure)
    assert code["text"] == procedure
    local, snomed = ORDERABLES[procedure]
    systems = [c["system"] for c in code["coding"]]
    assert systems == ([SNOMED] if snomed else []) + [PROCEDURE_SYSTEM]
    assert code["coding"][-1]["code"] == local
    client = app.test_client()
    for coding in code["coding"]:
        _check_coding(client, coding)


def test_palpation_is_ordered_with_its_snomed_procedure(app: Flask) -> None:
    code = order_code("Palpation of the greater trochanter")
    assert code["coding"][0] == {"system": SNOMED, "code": "113011001",
                                 "display": "Palpation (procedure)"}


def test_prefetch_asks_for_a_standard_coded_finding_by_both_its_codes() -> None:
    """An EHR may store a finding under its standard code or under the product's local one:
    the Observation query that asks for it names both (issue 14)."""
    from service.ehr.prefetch import TEMPLATES
    asked = ",".join(t for k, t in TEMPLATES.items() if k.startswith("observations"))
    asked = asked.replace("&", ",") + ","
    coded = [f for f in record_fields()
             if f.code is not None and f.role != "rows" and f.name not in ("age_years", "sex")]
    assert {"rf_fever", "pain_nrs"} <= {f.name for f in coded}
    for f in coded:
        for c in (f.code, f.local_coding):
            assert c is not None and f"{c.system}|{c.code}," in asked, (f.name, c)


def test_every_reason_without_a_code_names_what_was_searched_or_why_none_can_exist() -> None:
    for name, reason in UNCODED.items():
        assert ("stored" in reason or "no meaning outside this contract" in reason
                or "not a finding" in reason or "diagnosis" in reason
                or "differ by their cause" in reason), (name, reason)
