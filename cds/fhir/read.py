"""FHIR R4 in: resources -> a patient record.

``Patient`` (gender -> ``sex``, birthDate -> ``age_years``), ``Observation`` (matched by the
contract's codings; ``valueQuantity`` units checked against ``Feature.ucum`` and converted by
UCUM (:mod:`cds.units`) when they measure the same thing), ``Condition`` (active complaints by code) and the
``QuestionnaireResponse`` of our ``gmed-intake`` Questionnaire (linkId = feature name). A value in
a unit we cannot convert safely is an error naming the feature and the rule ``unit``: never misread.
When two sources give one finding, the most recent wins (Observation ``effective[x]``/``issued``,
QuestionnaireResponse ``authored``); demographics come from the Patient.

One value for one finding (codes, quantities and units, the reader's state) is read by
:mod:`cds.fhir.values`. Out is elsewhere: the RiskAssessment is a renderer
(:mod:`cds.render.risk_assessment`); the Questionnaire and CodeSystem published from the
contract are :mod:`cds.fhir.publish`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..errors import ErrorList, FieldError, InvalidRecord
from ..features import BY_NAME, ROWS, Feature, record_fields
from .codes import COMPLAINT_CODES, QUESTIONNAIRE_URL
from .values import (
    _answer_problem,
    _check_subject,
    _codings,
    _items,
    _list,
    _read_value,
    _Reader,
    _ref,
    _when,
)

_CONDITION_INDEX = {code: c for c, codes in COMPLAINT_CODES.items() for code in codes}
_OBSERVATION_INDEX = {(c.system, c.code): f for f in record_fields() if f.role != "rows"
                      for c in f.codings}  # the standard code, and the local one
_END = object()  # the end of an iterator in flatten()
_SKIP_STATUS = {"entered-in-error", "cancelled", "registered", "amended-in-error"}
_NUMBERS = (int, float)


def _observation_feature(concept: Any) -> Feature | None:
    """The one contract feature an Observation's ``code`` names (``None``: none, or several),
    read in one pass over its codings (the mapping's most frequent step)."""
    if not (type(concept) is dict or isinstance(concept, Mapping)):
        return None
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return None
    found: Feature | None = None
    for c in codings:
        if type(c) is dict or isinstance(c, Mapping):
            system, code = c.get("system", ""), c.get("code", "")
            f = _OBSERVATION_INDEX.get((system, code) if type(system) is str and type(code) is str
                                       else (str(system), str(code)))
            if f is not None:
                if found is not None and f is not found:
                    return None  # two features: ambiguous, not read
                found = f
    return found


@dataclass
class FhirRecord:
    """A patient record read from FHIR, with the references it was built from."""

    record: dict[str, Any]
    basis: list[str] = field(default_factory=list)
    patient_id: str | None = None
    set_aside: list[FieldError] = field(default_factory=list)


def _is_outcome_entry(entry: Mapping[str, Any]) -> bool:
    search = entry.get("search")
    return search is not None and (type(search) is dict or isinstance(search, Mapping)) \
        and search.get("mode") == "outcome"


def _entry_resources(entries: list[Any]) -> tuple[list[Any], bool]:
    """A Bundle's ``entry[].resource`` (outcome entries and entries without one left out), in
    one pass, and whether each is a plain resource (no list, no Bundle: nothing to unfold)."""
    found: list[Any] = []
    plain = True
    for e in entries:
        if (type(e) is dict or isinstance(e, Mapping)) and (r := e.get("resource")) is not None \
                and ("search" not in e or not _is_outcome_entry(e)):
            found.append(r)
            if plain and (type(r) is not dict or r.get("resourceType") == "Bundle"):
                plain = False
    return found, plain


def flatten(resources: Any) -> list[Mapping[str, Any]]:
    """A resource, a list of resources or a Bundle (nested too) -> the plain resources, in
    document order.

    Linear in the number of items: a stack of iterators, each item taken once from the end of
    the stack (popping the front of a list, or splicing a list into its front, moves every item
    behind it: a 1 MiB body of ``[0,0,...]`` cost ~20 s of CPU that way).
    """
    out: list[Mapping[str, Any]] = []
    _flatten_into(resources, out)
    return out


def _flatten_into(resources: Any, out: list[Mapping[str, Any]]) -> None:
    """:func:`flatten` into ``out``. A Bundle whose entries are all plain resources (the usual
    searchset) is read in one pass, without the stack."""
    stack: list[Iterator[Any]] = [iter((resources,))]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        elif type(item) is dict or isinstance(item, Mapping):
            if item.get("resourceType") == "Bundle":
                entries = item.get("entry")
                if isinstance(entries, list):
                    found, plain = _entry_resources(entries)
                    if plain:
                        out.extend(found)
                    else:  # nested lists or Bundles: in document order, through the stack
                        stack.append(iter(found))
            else:
                out.append(item)


def _patient(resource: Mapping[str, Any], reader: _Reader) -> None:
    pid = resource.get("id")
    if reader.patient_id and pid and pid != reader.patient_id:
        reader.error("subject", "subject", "More than one Patient; one record is one patient")
        return
    reader.patient_id = pid if isinstance(pid, str) else reader.patient_id
    gender = resource.get("gender")
    if gender in BY_NAME["sex"].allowed:
        reader.put("sex", gender, "~")  # "~" sorts after every date: the Patient wins
    birth = resource.get("birthDate")
    if isinstance(birth, str) and birth:
        try:
            parts = [int(p) for p in birth[:10].split("-")]
            # a partial date is read at its midpoint (July 1st, the 15th): off by < 6 months
            born = date(parts[0], parts[1] if len(parts) > 1 else 7, parts[2] if len(parts) > 2 else 15)
        except (ValueError, IndexError):
            reader.error("age_years", "format", "Age: Patient.birthDate is not a FHIR date")
            return
        age = reader.today.year - born.year - ((reader.today.month, reader.today.day)
                                               < (born.month, born.day))
        reader.put("age_years", age, "~")


def _observation(resource: Mapping[str, Any], reader: _Reader) -> None:
    """One Observation, read in one pass over its plain dict: its finding by the prebuilt code
    index, its subject, its value (lenient: set aside when unusable), kept if the most recent.
    Long: the per-resource steps inlined (the hook's most frequent path), each as the helpers
    in :mod:`cds.fhir.values` do it."""
    get = resource.get
    status = get("status")
    if (isinstance(status, str) and status in _SKIP_STATUS) or "dataAbsentReason" in resource:
        return
    f = _observation_feature(get("code"))
    if f is None:
        return
    subject = get("subject") or get("patient")
    if type(subject) is dict or isinstance(subject, Mapping):
        ref = subject.get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            if reader.patient_id is None:
                reader.patient_id = ref.removeprefix("Patient/")
            elif ref[8:] != reader.patient_id:
                reader.error("subject", "subject", "An Observation is about another patient")
                return
    if reader.set_aside is None:
        value = _read_value(f, resource, "an Observation", reader)
    else:  # lenient: this Observation's errors are its own, to be set aside with it
        outer, scratch = reader.errors, reader.scratch
        reader.errors = scratch
        value = _read_value(f, resource, "an Observation", reader)
        reader.errors = outer
        problems: list[FieldError] = []
        if scratch.total:  # used: the next Observation gets a fresh one (most need none)
            problems, reader.scratch = list(scratch), ErrorList()
        if problems or (isinstance(value, _NUMBERS) and not isinstance(value, bool) and (
                (f.minimum is not None and value < f.minimum)
                or (f.maximum is not None and value > f.maximum))):
            value = _set_aside(f, value, resource, reader, problems)
    if value is None:
        return
    when = get("effectiveDateTime")
    if type(when) is not str:
        when = _when(resource, "effectiveDateTime", "effectivePeriod", "effectiveInstant",
                     "issued")
    current = reader.values.get(f.name)
    if current is None or when >= current[0]:  # the most recent wins (_Reader.put)
        reader.values[f.name] = (when, value)
    rid = get("id")
    if isinstance(rid, str) and rid:
        reader.basis.append(f"Observation/{rid}")


def _set_aside(f: Feature, value: Any, resource: Mapping[str, Any], reader: _Reader,
               problems: list[FieldError]) -> Any:
    """Lenient reading: an Observation whose value is unusable (unit, type, code, or outside the
    contract's range) is set aside, named by its reference, instead of failing the record."""
    if not problems and isinstance(value, int | float) and not isinstance(value, bool) and (
            (f.minimum is not None and value < f.minimum)
            or (f.maximum is not None and value > f.maximum)):
        low = f.minimum is not None and value < f.minimum
        problems = [FieldError(f.name, "minimum" if low else "maximum",
                               f"{f.label}: an Observation's value is outside the contract's "
                               f"range ({f.minimum}-{f.maximum} {f.unit or ''})".rstrip())]
    if not problems:
        return value
    where = _ref(resource) or "an Observation without id"
    assert reader.set_aside is not None
    reader.set_aside.extend(FieldError(p.field, p.rule, f"{p.message} ({where} set aside)")
                            for p in problems)
    return None


def _condition(resource: Mapping[str, Any], reader: _Reader) -> None:
    clinical = {code for _, code in _codings(resource.get("clinicalStatus"))}
    verification = {code for _, code in _codings(resource.get("verificationStatus"))}
    if (clinical and not clinical & {"active", "recurrence", "relapse"}) \
            or verification & {"refuted", "entered-in-error"}:
        return
    complaints = {_CONDITION_INDEX[c] for c in _codings(resource.get("code"))
                  if c in _CONDITION_INDEX}
    if complaints and _check_subject(resource, reader, "A Condition"):
        reader.complaints.extend(c for c in ROWS.allowed
                                 if c in complaints and c not in reader.complaints)
        if ref := _ref(resource):
            reader.basis.append(ref)


def _qr_set_aside(reader: _Reader, resource: Mapping[str, Any], link: str,
                  problems: Iterable[FieldError]) -> None:
    where = f"{_ref(resource) or 'a QuestionnaireResponse without id'} item '{link[:64]}'"
    assert reader.set_aside is not None
    reader.set_aside.extend(FieldError(p.field, p.rule, f"{p.message} ({where} set aside)")
                            for p in problems)


def _qr_answer(f: Feature, answer: Mapping[str, Any], resource: Mapping[str, Any],
               reader: _Reader) -> Any:
    """One answer's value for ``f``. Strict: a read error fails the record. Lenient: an unusable
    answer (wrong type, a unit that cannot be converted, out of range) is set aside, named by its
    resource and linkId, and the rest of the response is read."""
    if reader.set_aside is None:
        return _read_value(f, answer, "a QuestionnaireResponse answer", reader, True)
    outer, scratch = reader.errors, reader.scratch
    reader.errors = scratch
    value = _read_value(f, answer, "a QuestionnaireResponse answer", reader, True)
    reader.errors = outer
    problems: list[FieldError] = []
    if scratch.total:  # used: the next answer gets a fresh one (most need none)
        problems, reader.scratch = list(scratch), ErrorList()
    if not problems and (problem := _answer_problem(f, value)) is not None:
        problems = [problem]
    if problems:
        _qr_set_aside(reader, resource, f.name, problems)
        return None
    return value


def _questionnaire_response(resource: Mapping[str, Any], reader: _Reader) -> None:
    canonical = str(resource.get("questionnaire") or QUESTIONNAIRE_URL).split("|")[0]
    if canonical not in (QUESTIONNAIRE_URL, "Questionnaire/gmed-intake"):
        problem = FieldError("questionnaire", "questionnaire", "QuestionnaireResponse answers "
                             f"another Questionnaire; expected {QUESTIONNAIRE_URL}")
        if reader.set_aside is None:
            reader.errors.append(problem)
        else:
            reader.set_aside.append(FieldError(problem.field, problem.rule, problem.message + (
                f" ({_ref(resource) or 'a QuestionnaireResponse without id'} set aside)")))
        return
    if resource.get("status") in ("entered-in-error", "stopped") \
            or not _check_subject(resource, reader, "A QuestionnaireResponse"):
        return
    when = _when(resource, "authored")
    for item in _items(resource.get("item")):
        link = item.get("linkId")
        f = BY_NAME.get(link) if isinstance(link, str) else None
        answers = [a for a in _list(item.get("answer")) if type(a) is dict or isinstance(a, Mapping)]
        if not answers or (f is None and "item" in item):
            continue  # a group, or an unanswered question
        if f is None or f.role == "derived":
            named = link[:64] if isinstance(link, str) and link else "QuestionnaireResponse.item.linkId"
            problem = FieldError(named, "additionalProperties",
                                 "QuestionnaireResponse item is not a question of gmed-intake")
            if reader.set_aside is None:
                reader.errors.append(problem)
            else:
                _qr_set_aside(reader, resource, named, [problem])
            continue
        if f.role == "rows":
            for a in answers:
                value = _qr_answer(f, a, resource, reader)
                if value is not None and value not in reader.complaints:
                    reader.complaints.append(value)
            continue
        reader.put(f.name, _qr_answer(f, answers[0], resource, reader), when)
    if ref := _ref(resource):
        reader.basis.append(ref)


_READERS = {"Patient": _patient, "Observation": _observation, "Condition": _condition,
            "QuestionnaireResponse": _questionnaire_response}


SET_ASIDE = "resource-set-aside"


def set_aside_warnings(set_aside: Iterable[FieldError]) -> list[dict[str, str]]:
    """The Assessment warnings (code ``resource-set-aside``) for Observations set aside."""
    return [{"feature": e.field, "code": SET_ASIDE, "message": e.message} for e in set_aside]


def record_from_fhir(resources: Any, *, today: date | None = None,
                     lenient: bool = False) -> FhirRecord:
    """Map FHIR R4 resources (a Bundle, a list, or one resource) to a patient record.

    Resources of other types are ignored. Raises :class:`~cds.errors.InvalidRecord` naming the
    feature and rule of every value that cannot be read safely (wrong unit, unknown answer code,
    another patient's data). The record is not validated against the contract here: pass it to
    :func:`cds.assess` (which does) or :func:`cds.validate_record`.

    ``lenient``: an Observation or a QuestionnaireResponse answer whose value cannot be used (a
    unit of another dimension, no value or the wrong type, an unknown code, outside the
    contract's range) is left out and listed in
    ``FhirRecord.set_aside`` instead of failing the whole record (a CDS Hooks call keeps its card).
    """
    reader = _Reader(today=today or date.today(), set_aside=ErrorList() if lenient else None)
    flat = flatten(resources)
    # the Patient first, so every other resource can be checked against it (document order kept)
    if any(r.get("resourceType") == "Patient" for r in flat):
        flat = [r for r in flat if r.get("resourceType") == "Patient"] + [
            r for r in flat if r.get("resourceType") != "Patient"]
    for resource in flat:
        kind = resource.get("resourceType")
        handler = _READERS.get(kind if type(kind) is str else str(kind))
        if handler is not None:
            handler(resource, reader)
    if reader.errors:
        raise InvalidRecord(reader.errors)
    record: dict[str, Any] = {name: value for name, (_, value) in reader.values.items()}
    if reader.complaints:
        record[ROWS.name] = [c for c in ROWS.allowed if c in reader.complaints] + [
            c for c in reader.complaints if c not in ROWS.allowed]  # unknowns fail validation
    if reader.patient_id:
        record["patient_id"] = reader.patient_id[:128]
    return FhirRecord(record=record, basis=list(dict.fromkeys(reader.basis)),
                      patient_id=reader.patient_id,
                      set_aside=list(reader.set_aside or ()))  # bounded: the kept ones
