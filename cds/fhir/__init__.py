"""FHIR R4 at the core's edge, in three parts (the RiskAssessment is a renderer: :mod:`cds.render`).

* :mod:`cds.fhir.read`: resources (a Bundle, a list, one resource) -> a patient record;
  :mod:`cds.fhir.values` reads one value for one finding (codes, quantities, units);
* :mod:`cds.fhir.publish`: the contract published as the intake Questionnaire and the findings
  CodeSystem;
* :mod:`cds.fhir.codes`: the codes and canonical URLs both (and the renderers) share.

This module only re-exports.
"""

from ..features import COMPLAINT_SYSTEM as COMPLAINT_SYSTEM
from .codes import AI_ASSERTED as AI_ASSERTED
from .codes import BASE as BASE
from .codes import COMPLAINT_CODES as COMPLAINT_CODES
from .codes import QUESTIONNAIRE_URL as QUESTIONNAIRE_URL
from .codes import REFERRAL_LOCAL as REFERRAL_LOCAL
from .codes import REFERRAL_SNOMED as REFERRAL_SNOMED
from .codes import RISK_PROBABILITY as RISK_PROBABILITY
from .codes import RISK_PROBABILITY_DISPLAY as RISK_PROBABILITY_DISPLAY
from .codes import UCUM as UCUM
from .codes import answer_system as answer_system
from .publish import findings_code_system as findings_code_system
from .publish import intake_questionnaire as intake_questionnaire
from .read import SET_ASIDE as SET_ASIDE
from .read import FhirRecord as FhirRecord
from .read import flatten as flatten
from .read import record_from_fhir as record_from_fhir
from .read import set_aside_warnings as set_aside_warnings

__all__ = [
    "AI_ASSERTED",
    "BASE",
    "COMPLAINT_CODES",
    "COMPLAINT_SYSTEM",
    "QUESTIONNAIRE_URL",
    "REFERRAL_LOCAL",
    "REFERRAL_SNOMED",
    "RISK_PROBABILITY",
    "RISK_PROBABILITY_DISPLAY",
    "SET_ASIDE",
    "UCUM",
    "FhirRecord",
    "answer_system",
    "findings_code_system",
    "flatten",
    "intake_questionnaire",
    "record_from_fhir",
    "set_aside_warnings",
]
