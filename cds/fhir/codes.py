"""The codes and canonical URLs the FHIR reader, the publisher and the renderers share."""

from __future__ import annotations

from ..features import COMPLAINT_SYSTEM, LOCAL_SYSTEM, ROWS, SNOMED, Feature

UCUM = "http://unitsofmeasure.org"
BASE = "https://gmed-cds.org/fhir"
QUESTIONNAIRE_URL = f"{BASE}/Questionnaire/gmed-intake"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"

# Condition codes per complaint, from the contract (our own code system first).
COMPLAINT_CODES: dict[str, tuple[tuple[str, str], ...]] = {
    value: tuple((c.system, c.code) for c in codes)
    for value, codes in zip(ROWS.allowed, ROWS.allowed_codes, strict=True)
}

# the displays of http://terminology.hl7.org/CodeSystem/risk-probability (THO), by code
RISK_PROBABILITY_DISPLAY = {"negligible": "Negligible likelihood", "low": "Low likelihood",
                            "moderate": "Moderate likelihood", "high": "High likelihood",
                            "certain": "Certain"}
# HL7 AI Transparency on FHIR: the security label of AI-asserted content (ValueSet ProvenanceVS)
AI_ASSERTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
               "code": "AIAST", "display": "Artificial Intelligence asserted"}
REFERRAL_SNOMED = {"system": SNOMED, "code": "3457005", "display": "Patient referral"}
REFERRAL_LOCAL = {"system": LOCAL_SYSTEM, "code": "refer_red_flag",
                  "display": "Refer / rule out serious pathology first (red flag present)"}


def answer_system(f: Feature) -> str:
    """The code system of a category feature's answers in the Questionnaire."""
    return COMPLAINT_SYSTEM if f.role == "rows" else f"{BASE}/CodeSystem/{f.name}"
