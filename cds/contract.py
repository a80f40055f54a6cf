"""The vocabulary of the input contract: what one feature declares, and to whom it applies.

:mod:`cds.features` holds the table (:data:`cds.features.FEATURES`); this module holds the row
type, the code systems and the applicability rule, so the table reads as data.

Applicability is declarative: a finding names the complaints (``complaints``) and the activity
profiles (``profiles``; ``None`` = any, including not recorded) it applies to. A finding that
does not apply to a complaint is set aside for that complaint's model row, in training and in
serving alike (:mod:`cds.intake`), is never listed as missing for it and never suggested as its
next test (:mod:`cds.explain`), and a value recorded anyway is reported as set aside
(:func:`cds.safety.not_applicable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Group = Literal["intake", "exam", "movement"]
Kind = Literal["number", "integer", "boolean", "category"]
Role = Literal["model", "rows", "derived", "input", "red_flag"]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOCAL_SYSTEM = "https://gmed-cds.org/fhir/CodeSystem/findings"
COMPLAINT_SYSTEM = "https://gmed-cds.org/fhir/CodeSystem/complaints"

GROUPS: tuple[Group, ...] = ("intake", "exam", "movement")
COMPLAINTS: tuple[str, ...] = ("pfp", "itbs", "lbp")
COMPLAINT_LABELS: tuple[str, ...] = ("Patellofemoral (anterior knee) pain",
                                     "IT band syndrome (lateral knee)", "Low back pain")
KNEE: tuple[str, ...] = ("pfp", "itbs")
PROFILES: tuple[str, ...] = ("runner", "cyclist", "general")
PROFILE_LABELS: tuple[str, ...] = ("Runner", "Cyclist", "General / other")
PROFILE_FIELD = "activity_profile"

_COMPLAINT_WORDS = dict(zip(COMPLAINTS, ("patellofemoral pain", "IT band syndrome",
                                         "low back pain"), strict=True))
_PROFILE_WORDS = dict(zip(PROFILES, ("runners", "cyclists", "general / other"), strict=True))


def _words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class Coding:
    """A FHIR Coding: where the feature lives in an EHR."""

    system: str
    code: str
    display: str


@dataclass(frozen=True)
class Feature:
    """One input of the contract (see :mod:`cds.features` for groups and roles).

    ``evidence`` cites the literature behind the monotone direction (or behind leaving it free);
    ``points_to`` says what a positive or abnormal finding points to ("hip abductor weakness",
    "gluteal tendinopathy, a co-existing source", "the knee joint"...). ``norm`` names the
    :mod:`cds.norms` table of a strength finding (sex- and age-specific reference ranges).
    ``converts_to`` marks a dynamometer reading that intake converts into the named torque field.
    ``ordered`` marks a category whose levels are ordered (coded by position as a number, so it can
    carry a monotone direction). ``limit_reason`` is said with a minimum/maximum refusal.
    """

    name: str
    group: Group
    kind: Kind
    label: str
    unit: str | None = None
    ucum: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()
    allowed_labels: tuple[str, ...] = ()
    allowed_codes: tuple[tuple[Coding, ...], ...] = ()
    reference: str | None = None
    monotone: int = 0
    role: Role = "model"
    code: Coding | None = None
    derived_from: tuple[str, ...] = ()
    row_column: str | None = None
    help: str = ""
    required: bool = False
    procedure: str | None = None
    complaints: tuple[str, ...] = COMPLAINTS
    profiles: tuple[str, ...] | None = None
    ordered: bool = False
    points_to: str = ""
    evidence: str = ""
    norm: str | None = None
    converts_to: str | None = None
    limit_reason: str = ""

    @property
    def coding(self) -> Coding:
        """The feature's FHIR coding: its standard code, or its local one."""
        return self.code or Coding(LOCAL_SYSTEM, self.name, self.label)

    @property
    def local_coding(self) -> Coding:
        """The feature's code in the product's own findings code system (code = feature name)."""
        return Coding(LOCAL_SYSTEM, self.name, self.label)

    @property
    def codings(self) -> tuple[Coding, ...]:
        """Every coding an emitted resource carries: the standard code (LOINC or SNOMED CT)
        where one exists, then always the local one, so either side can match it."""
        return ((self.code,) if self.code else ()) + (self.local_coding,)

    @property
    def restricted(self) -> bool:
        """Whether the finding applies to only some complaints or some activity profiles."""
        return self.profiles is not None or set(self.complaints) != set(COMPLAINTS)

    @property
    def condition(self) -> str | None:
        """When the finding applies, in words; ``None`` = always.

        "IT band syndrome only", "runners only", "patellofemoral pain and IT band syndrome only;
        runners and cyclists only".
        """
        parts = []
        if set(self.complaints) != set(COMPLAINTS):
            parts.append(_words([_COMPLAINT_WORDS[c] for c in self.complaints]) + " only")
        if self.profiles is not None:
            parts.append(_words([_PROFILE_WORDS[p] for p in self.profiles]) + " only")
        return "; ".join(parts) or None

    def applies_to_profile(self, profile: str | None) -> bool:
        """Whether the finding applies to a patient of this activity profile (``None``: not
        recorded, which a profile-restricted finding does not assume)."""
        return self.profiles is None or profile in self.profiles

    def applies_to(self, record: Mapping[str, Any], complaint: str | None = None) -> bool:
        """Whether the finding applies to the patient of ``record``: to ``complaint`` if given,
        else to at least one of the record's complaints."""
        if not self.applies_to_profile(record.get(PROFILE_FIELD)):
            return False
        if complaint is not None:
            return complaint in self.complaints
        complaints = record.get("complaints") or COMPLAINTS
        return any(c in self.complaints for c in complaints)
