"""The JSON body of an Assessment (``application/json``): the public Assessment contract, and
its JSON Schema derived from the dataclasses (:func:`json_schemas`, published by the OpenAPI
document): a field added to the type appears in the schema."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from ..assessment import Assessment, ComplaintResult, Factor, NextAssessment, NotRecorded
from ..features import GROUPS, ROWS
from ..points import METHOD as POINTS_METHOD
from ..safety import WARNING_CODES


def json_body(assessment: Assessment) -> dict[str, Any]:
    """The Assessment as plain JSON-ready data (its fields, nested results and factors)."""
    return assessment.to_dict()


# ------------------------------------------------------------------------------- its schema

# What the type does not say about a field: constraints and descriptions (key "" = the object).
# Names, JSON types, nesting and which fields are required all come from the dataclasses.
FIELD_SCHEMA: dict[type, dict[str, dict[str, Any]]] = {
    Factor: {
        "value": {"type": ["string", "number", "boolean", "null"]},
        "contribution": {"description": "exact TreeSHAP, log-odds"},
        "direction": {"enum": ["raises", "lowers"]},
        "probability_change": {"description": "the contribution as a change of the calibrated "
                                              "probability (0-1): " + POINTS_METHOD},
        "points": {"description": "probability_change in whole percentage points, rounded so "
                                  "that the points of all lines add up to round(100 * "
                                  "probability) - round(100 * starting_probability)"},
    },
    NotRecorded: {
        "": {"description": "the findings not recorded (or set aside), together: never listed "
                            "as reasons one by one"},
        "count": {"minimum": 1},
        "direction": {"enum": ["raises", "lowers"]},
    },
    NextAssessment: {"group": {"enum": list(GROUPS)}},
    ComplaintResult: {
        "complaint": {"enum": list(ROWS.allowed)},
        "probability": {"minimum": 0, "maximum": 1},
        "band": {"enum": ["low", "moderate", "high"]},
        "base_value": {"description": "the model's base value (TreeSHAP expected value), "
                                      "log-odds"},
        "starting_point": {"description": "base_value plus the complaint's own contribution: "
                                          "the base rate of this complaint (log-odds); "
                                          "starting_point + sum(factors) + not_recorded == "
                                          "raw_score"},
        "starting_probability": {"minimum": 0, "maximum": 1},
        "factors": {"description": "recorded findings only, largest contribution first"},
        "missing": {"items": {"type": "object", "required": ["feature", "label", "group"],
                              "properties": {"feature": {"type": "string"},
                                             "label": {"type": "string"},
                                             "group": {"enum": list(GROUPS)}}}},
    },
    Assessment: {
        "model": {"required": ["id", "version", "trained_on"],
                  "properties": {"id": {"type": "string"}, "version": {"type": "string"},
                                 "trained_on": {"type": "string"}}},
        "action": {"enum": ["assess", "refer"],
                   "description": "refer: a red flag is present; results is empty (no "
                                  "probability, band, factor or next test is given) and "
                                  "referral says what to do"},
        "red_flags": {"items": {"type": "object", "required": ["feature", "label"],
                                "properties": {"feature": {"type": "string"},
                                               "label": {"type": "string"}}}},
        "warnings": {"items": {"type": "object", "required": ["feature", "code", "message"],
                               "properties": {"feature": {"type": "string"}, "code": {
                                   "enum": list(WARNING_CODES), "description":
                                   "out-of-population: a value outside the training population "
                                   "(extrapolated); not-applicable: a finding recorded where it "
                                   "does not apply, set aside; red-flag-screen-incomplete: "
                                   "red-flag questions not asked (feature lists them, "
                                   "comma-separated); the estimate is still given"},
                                   "message": {"type": "string"}}}},
        "results": {"description": "one per complaint; empty when action is refer"},
        "referral": {"description": "what to do instead of any estimate (action refer); "
                                    "else null"},
    },
}
_REPLACING = ("enum", "$ref", "const")  # a field schema with one of these replaces the type's
_JSON_TYPES: dict[Any, str] = {str: "string", float: "number", int: "integer", bool: "boolean"}


def _ref(cls: type) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{cls.__name__}"}


def _type_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of a field's annotation (the nested dataclasses by reference)."""
    if hint is Any:
        return {}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _ref(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if len(args) < len(typing.get_args(hint)):  # X | None
        inner = _type_schema(args[0])
        if "type" in inner and isinstance(inner["type"], str):
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    origin = typing.get_origin(hint)
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        return {"type": "object"}
    raise TypeError(f"no JSON Schema for the annotation {hint!r}")


def _field_schema(hint: Any, extra: dict[str, Any]) -> dict[str, Any]:
    base = _type_schema(hint)
    if any(k in extra for k in _REPLACING):
        return dict(extra)
    return {**base, **extra}


def object_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of one of the Assessment's dataclasses, as :meth:`Assessment.to_dict`
    writes it: every field is present (required), in the type's order."""
    hints = typing.get_type_hints(cls)
    extras = FIELD_SCHEMA.get(cls, {})
    names = [f.name for f in dataclasses.fields(cls)]
    return {"type": "object", "required": names, **extras.get("", {}),
            "properties": {n: _field_schema(hints[n], extras.get(n, {})) for n in names}}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schemas of the Assessment and of every type nested in it, by type name (the
    OpenAPI document's components)."""
    return {cls.__name__: object_schema(cls)
            for cls in (Factor, NotRecorded, NextAssessment, ComplaintResult, Assessment)}
