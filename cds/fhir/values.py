"""Reading one FHIR value for one finding of the contract, the part :mod:`cds.fhir.read` shares
between Observations, QuestionnaireResponse answers and the Patient.

A coded answer (SNOMED yes/no, HL7 v2-0136 Y/N, LOINC answer codes, the contract's own codes) to
a boolean or category; a ``valueQuantity`` to the contract's UCUM unit, converted only where
:mod:`cds.units` knows the conversion exactly; the reader's state (the most recent value of each
finding, the errors, the references read, what a lenient read set aside).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .. import units
from ..errors import ErrorList, FieldError
from ..features import SNOMED, Feature
from .codes import UCUM

_YES = {(SNOMED, "373066001"), ("http://terminology.hl7.org/CodeSystem/v2-0136", "Y")}
_NO = {(SNOMED, "373067005"), ("http://terminology.hl7.org/CodeSystem/v2-0136", "N")}
_LOINC_ANSWERS = {"LA3-6": "female", "LA2-8": "male"}
_NUMBERS = (int, float)


@dataclass
class _Reader:
    today: date
    values: dict[str, tuple[str, Any]] = field(default_factory=dict)  # feature -> (when, value)
    complaints: list[str] = field(default_factory=list)
    errors: ErrorList = field(default_factory=ErrorList)  # bounded: one bad item each is many
    basis: list[str] = field(default_factory=list)
    patient_id: str | None = None
    set_aside: ErrorList | None = None  # lenient: unusable Observations, not errors
    scratch: ErrorList = field(default_factory=ErrorList)  # lenient: one Observation's, empty

    def put(self, name: str, value: Any, when: str) -> None:
        if value is None:
            return
        current = self.values.get(name)
        if current is None or when >= current[0]:
            self.values[name] = (when, value)

    def error(self, name: str, rule: str, message: str) -> None:
        self.errors.append(FieldError(name, rule, message))


def _list(value: Any) -> list[Any]:
    """A FHIR array, or nothing: a wrong type where an array belongs is read as absent."""
    return value if isinstance(value, list) else []


def _is_map(value: Any) -> bool:
    """A JSON object: a plain dict (checked first, the cheap case) or any other Mapping."""
    return type(value) is dict or isinstance(value, Mapping)


def _codings(concept: Any) -> list[tuple[str, str]]:
    if not _is_map(concept):
        return []
    return [(str(c.get("system", "")), str(c.get("code", "")))
            for c in _list(concept.get("coding")) if _is_map(c)]


def _ref(resource: Mapping[str, Any]) -> str | None:
    rid = resource.get("id")
    return f"{resource.get('resourceType')}/{rid}" if isinstance(rid, str) and rid else None


def _scalar_from_code(f: Feature, codings: list[tuple[str, str]], text: Any) -> Any:
    """A boolean or category from coded (or plain-text) answers; ``None`` when unrecognised."""
    if f.kind == "boolean":
        if any(c in _YES for c in codings):
            return True
        if any(c in _NO for c in codings):
            return False
        return None
    for _, code in codings:
        code = _LOINC_ANSWERS.get(code, code) if f.name == "sex" else code
        if code in f.allowed:
            return code
    return text if isinstance(text, str) and text in f.allowed else None


def _quantity(f: Feature, q: Any, where: str, reader: _Reader) -> Any:
    """A valueQuantity in the contract's unit, converted only where the conversion is exact."""
    number = q.get("value") if type(q) is dict or isinstance(q, Mapping) else None
    if not isinstance(number, _NUMBERS) or isinstance(number, bool):
        reader.error(f.name, "type", f"{f.label}: {where} has no numeric valueQuantity.value")
        return None
    system, code = q.get("system"), q.get("code") or q.get("unit")
    try:
        value = float(number)
    except OverflowError:  # an integer of hundreds of digits: no finding is that large
        reader.error(f.name, "maximum", f"{f.label}: {where} valueQuantity.value is out of range")
        return None
    if system not in (None, UCUM) or not (code is None or isinstance(code, str)):
        reader.error(f.name, "unit", f"{f.label}: {where} unit is not UCUM; expected '{f.ucum}'")
        return None
    if code == f.ucum or (f.ucum and f.ucum.startswith("{") and code in ("1", "{score}")):
        converted = value
    elif f.ucum and code and (ratio := units.factor(f.ucum, code)) is not None:
        converted = value * ratio
    else:
        reader.error(f.name, "unit", f"{f.label}: {where} is in a unit that cannot be converted "
                                     f"safely; expected UCUM '{f.ucum}'")
        return None
    if f.kind == "integer" and code != f.ucum and not str(f.ucum).startswith("{"):
        return math.floor(converted + 1e-9)  # age in months -> completed years
    if f.kind == "integer" and converted == int(converted):
        return int(converted)
    return round(converted, 6)


def _read_value(f: Feature, holder: Mapping[str, Any], where: str, reader: _Reader,
                unit_declared: bool = False) -> Any:
    """The value of an Observation or a QuestionnaireResponse answer for feature ``f``.

    ``unit_declared``: a bare number is in the contract's unit because the question says so
    (our Questionnaire declares each unit); an Observation's bare number is ambiguous.
    """
    if f.kind in ("boolean", "category"):
        if "valueBoolean" in holder and f.kind == "boolean":
            return holder["valueBoolean"]  # not a boolean: validation names the field
        concept = holder.get("valueCodeableConcept")
        codings = _codings(concept)
        if "valueCoding" in holder and isinstance(holder["valueCoding"], Mapping):
            codings.append((str(holder["valueCoding"].get("system", "")),
                            str(holder["valueCoding"].get("code", ""))))
        value = _scalar_from_code(f, codings, holder.get("valueString"))
        if value is None:
            reader.error(f.name, "enum" if f.kind == "category" else "type",
                         f"{f.label}: {where} has no recognised coded answer")
        return value
    if "valueQuantity" in holder:
        return _quantity(f, holder["valueQuantity"], where, reader)
    for key in ("valueInteger", "valueDecimal"):
        if key in holder:
            if f.ucum and not f.ucum.startswith("{") and not unit_declared:
                reader.error(f.name, "unit", f"{f.label}: {where} gives a number without a unit; "
                                             f"use valueQuantity in '{f.ucum}'")
                return None
            return holder[key]
    reader.error(f.name, "type", f"{f.label}: {where} has no value of a supported type")
    return None


def _when(resource: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = resource.get(key)
        if type(value) is dict or isinstance(value, Mapping):
            value = value.get("end") or value.get("start")
        if isinstance(value, str):
            return value
    return ""


def _check_subject(resource: Mapping[str, Any], reader: _Reader, where: str) -> bool:
    subject = resource.get("subject") or resource.get("patient")
    ref = subject.get("reference") if type(subject) is dict or isinstance(subject, Mapping) \
        else None
    if not (isinstance(ref, str) and ref.startswith("Patient/")):
        return True
    if reader.patient_id is None:
        reader.patient_id = ref.removeprefix("Patient/")
    elif ref != f"Patient/{reader.patient_id}":
        reader.error("subject", "subject", f"{where} is about another patient")
        return False
    return True


def _items(items: Any) -> Iterable[Mapping[str, Any]]:
    """Every item of a QuestionnaireResponse, depth first, without recursion (any depth)."""
    stack = list(reversed(_list(items)))
    while stack:
        item = stack.pop()
        if type(item) is dict or isinstance(item, Mapping):
            yield item
            stack.extend(reversed(_list(item.get("item"))))


def _answer_problem(f: Feature, value: Any) -> FieldError | None:
    """Why a read answer is unusable for ``f`` (wrong type, not an allowed value, outside the
    contract's range), or ``None``: the checks :func:`cds.validate_record` would fail the
    whole record on."""
    if value is None:
        return None
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if f.kind == "boolean" and not isinstance(value, bool):
        return FieldError(f.name, "type", f"{f.label}: the answer is not a boolean")
    if f.kind == "integer" and not (is_number and float(value).is_integer()):
        return FieldError(f.name, "integer", f"{f.label}: the answer is not a whole number")
    if f.kind == "number" and not (is_number and math.isfinite(value)):
        return FieldError(f.name, "type", f"{f.label}: the answer is not a number")
    if f.kind == "category" and value not in f.allowed:
        return FieldError(f.name, "enum", f"{f.label}: the answer is not an allowed value")
    if is_number and f.minimum is not None and value < f.minimum:
        return FieldError(f.name, "minimum", f"{f.label}: the answer is below the contract's "
                                             f"minimum ({f.minimum} {f.unit or ''})".rstrip())
    if is_number and f.maximum is not None and value > f.maximum:
        return FieldError(f.name, "maximum", f"{f.label}: the answer is above the contract's "
                                             f"maximum ({f.maximum} {f.unit or ''})".rstrip())
    return None
