"""Validate a patient record against the contract, reporting every broken rule at once.

The rules are read from :data:`cds.features.FEATURES`, the same table the JSON Schema is derived
from, so the two agree by construction (a test checks them against each other). This validator is
hand-rolled rather than a JSON Schema engine because it sits on the request path of every
assessment and must cost microseconds. Messages name the field and the rule, never echo the value.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any, TypeGuard

from .errors import ErrorList, FieldError, InvalidRecord
from .features import Feature, record_fields

_FIELDS: dict[str, Feature] = {f.name: f for f in record_fields()}
_PATIENT_ID_MAX = 128


def is_text(value: Any) -> TypeGuard[str]:
    """A string that is Unicode text: JSON's ``\\ud800`` escapes can make a string with an
    unpaired surrogate, which no UTF-8 store, log or hash can take (I-JSON forbids them)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_scalar(f: Feature, value: Any, where: str) -> FieldError | None:
    if f.kind == "boolean":
        if not isinstance(value, bool):
            return FieldError(where, "type", f"{f.label}: must be true, false or null")
        return None
    if f.kind == "category":
        if not isinstance(value, str) or value not in f.allowed:
            return FieldError(where, "enum", f"{f.label}: must be one of {', '.join(f.allowed)}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return FieldError(where, "type", f"{f.label}: must be a number or null")
    if isinstance(value, float) and not math.isfinite(value):
        # an int is exact whatever its size (JSON allows 400 digits): the range check below
        # rejects it; only a float can be NaN or infinite
        return FieldError(where, "type", f"{f.label}: must be a finite number")
    if f.kind == "integer" and value != int(value):
        return FieldError(where, "integer", f"{f.label}: must be a whole number")
    unit = f" {f.unit}" if f.unit else ""
    why = f" ({f.limit_reason})" if f.limit_reason else ""
    if f.minimum is not None and value < f.minimum:
        return FieldError(where, "minimum", f"{f.label}: must be at least {f.minimum:g}{unit}{why}")
    if f.maximum is not None and value > f.maximum:
        return FieldError(where, "maximum", f"{f.label}: must be at most {f.maximum:g}{unit}{why}")
    return None


_READINGS: dict[str, list[Feature]] = {}
for _f in _FIELDS.values():
    if _f.converts_to is not None:
        _READINGS.setdefault(_f.converts_to, []).append(_f)
_LEVER, _MASS = "hip_abduction_lever_arm_m", "body_mass_kg"


def _check_dynamometry(clean: Mapping[str, Any]) -> list[FieldError]:
    """Cross-field rules of a dynamometer reading: one value per side (a torque, or a force in
    N or in kgf), and a force comes with the lever arm and body mass that turn it into torque."""
    errors = []
    for torque, readings in _READINGS.items():
        given = [f for f in (_FIELDS[torque], *readings) if clean.get(f.name) is not None]
        if len(given) > 1:
            errors.append(FieldError(given[1].name, "oneOf",
                                     f"{given[1].label}: give one value per side (the torque "
                                     f"or one force reading), not also {given[0].name}"))
        forces = [f for f in given if f.converts_to is not None]
        for needed in (_LEVER, _MASS):
            if forces and clean.get(needed) is None:
                errors.append(FieldError(needed, "dependentRequired",
                                         f"{_FIELDS[needed].label}: required to convert "
                                         f"{forces[0].name} into torque"))
    unique = {(e.field, e.rule): e for e in errors}
    return list(unique.values())


def _check_rows(f: Feature, value: Any) -> list[FieldError]:
    if not isinstance(value, list):
        return [FieldError(f.name, "type", f"{f.label}: must be a list")]
    if not value:
        return [FieldError(f.name, "minItems", f"{f.label}: at least one is required")]
    if len(value) > len(f.allowed):  # each allowed value at most once: checked before the items
        return [FieldError(f.name, "maxItems",
                           f"{f.label}: at most {len(f.allowed)} (each at most once)")]
    errors = [e for i, v in enumerate(value)
              if (e := _check_scalar(f, v, f"{f.name}[{i}]")) is not None]
    if not errors and len(set(value)) != len(value):
        errors.append(FieldError(f.name, "uniqueItems", f"{f.label}: each at most once"))
    return errors


_BOOLEAN, _NUMBER, _INTEGER, _CATEGORY, _ROWS = range(5)
_KINDS = {"boolean": _BOOLEAN, "integer": _INTEGER, "category": _CATEGORY}


def _rule(f: Feature) -> tuple[int, float, float, frozenset[str]]:
    """What a valid value of ``f`` is, as the single pass of :func:`validate_record` checks
    it: (kind, minimum, maximum, allowed values), read from the contract once."""
    kind = _ROWS if f.role == "rows" else _KINDS.get(f.kind, _NUMBER)
    # unbounded sides are the largest finite floats: an infinity (or NaN) never passes, and
    # goes to the every-rule path, which refuses it as not finite
    return (kind, -sys.float_info.max if f.minimum is None else f.minimum,
            sys.float_info.max if f.maximum is None else f.maximum, frozenset(f.allowed))


_RULES = {name: _rule(f) for name, f in _FIELDS.items()}
_REQUIRED = tuple(name for name, f in _FIELDS.items() if f.required)
_FORCE_READINGS = frozenset(f.name for readings in _READINGS.values() for f in readings)


def validate_record(record: Any) -> dict[str, Any]:
    """Return a clean copy of ``record`` (known fields only, nulls dropped) or raise.

    Raises :class:`~cds.errors.InvalidRecord` listing every broken rule (the first few of
    each field and a few dozen in all; the rest are counted: :class:`~cds.errors.ErrorList`).

    One pass over the record with each field's rule prebuilt (:func:`_rule`) accepts a valid
    record; anything it does not plainly accept (a broken rule, a type it does not know, such
    as a subclass of ``str``) is judged again by :func:`_validate_every_rule`, which names
    every broken rule, so the answer is that function's whatever the path.
    """
    if type(record) is not dict:
        return _validate_every_rule(record)
    clean: dict[str, Any] = {}
    for name, value in record.items():
        rule = _RULES.get(name)
        if value is None:
            if rule is None and name != "patient_id":
                return _validate_every_rule(record)  # an unknown field, even when null
            continue
        if rule is None:
            if not (name == "patient_id" and type(value) is str
                    and len(value) <= _PATIENT_ID_MAX and is_text(value)):
                return _validate_every_rule(record)
        else:
            kind, low, high, allowed = rule
            t = type(value)
            if kind == _BOOLEAN:
                ok = t is bool
            elif kind == _NUMBER:
                ok = (t is float or t is int) and low <= value <= high
            elif kind == _INTEGER:
                ok = (t is int or (t is float and value.is_integer())) and low <= value <= high
            elif kind == _CATEGORY:
                ok = t is str and value in allowed
            else:
                ok = (t is list and 0 < len(value) <= len(allowed)
                      and all(type(v) is str and v in allowed for v in value)
                      and len(set(value)) == len(value))
            if not ok:
                return _validate_every_rule(record)
        clean[name] = value
    for name in _REQUIRED:
        if name not in clean:
            return _validate_every_rule(record)
    if not _FORCE_READINGS.isdisjoint(clean) and _check_dynamometry(clean):
        return _validate_every_rule(record)
    return clean


def _validate_every_rule(record: Any) -> dict[str, Any]:
    """:func:`validate_record` field by field, naming every broken rule."""
    if not isinstance(record, Mapping):
        raise InvalidRecord([FieldError("$", "type", "A patient record must be a JSON object")])
    errors = ErrorList()
    clean: dict[str, Any] = {}
    for name, value in record.items():
        if name == "patient_id":
            if value is not None and (not is_text(value) or len(value) > _PATIENT_ID_MAX):
                errors.append(FieldError(name, "type", "patient_id: must be a string (Unicode "
                                                       f"text) of at most {_PATIENT_ID_MAX} characters"))
            elif value is not None:
                clean[name] = value
            continue
        f = _FIELDS.get(name)
        if f is None:
            errors.append(FieldError(str(name)[:64], "additionalProperties",
                                     "Unknown field (not in the feature contract)"))
            continue
        if value is None:
            continue
        if f.role == "rows":
            errors.extend(_check_rows(f, value))
        elif (e := _check_scalar(f, value, name)) is not None:
            errors.append(e)
        clean[name] = value
    for f in _FIELDS.values():
        if f.required and clean.get(f.name) is None and not errors.mentions(f.name):
            errors.append(FieldError(f.name, "required", f"{f.label}: required"))
    if not errors:
        errors.extend(_check_dynamometry(clean))
    if errors:
        raise InvalidRecord(errors)
    return clean
