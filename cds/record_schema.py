"""What the feature contract publishes: the JSON Schema of a patient record, the table as plain
data (``GET /v1/features``), and the hash of what a trained model reads.

Built from :data:`cds.features.FEATURES` (read at call time, so a test may swap the table) and
re-exported by :mod:`cds.features`, where callers look for them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from . import features as _fx
from . import norms
from .contract import Feature


def _property_schema(f: Feature) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": f.label}
    desc = []
    if f.unit and f.unit != _fx.YES_NO:
        desc.append(f"Unit: {f.unit}.")
    if f.reference:
        desc.append(f"Reference (pain-free people): {f.reference}.")
    if f.condition:
        desc.append(f"Applies to {f.condition}.")
    if f.help:
        desc.append(f.help)
    if desc:
        schema["description"] = " ".join(desc)
    null = [] if f.required else ["null"]  # a required field must have a value
    if f.kind == "boolean":
        schema["type"] = ["boolean", *null]
    elif f.kind == "category":
        schema["enum"] = [*f.allowed, *(None for _ in null)]
    else:
        schema["type"] = ["integer" if f.kind == "integer" else "number", *null]
        if f.minimum is not None:
            schema["minimum"] = f.minimum
        if f.maximum is not None:
            schema["maximum"] = f.maximum
    if f.role == "rows":
        item = {k: v for k, v in schema.items() if k not in ("title", "description")}
        item["enum"] = list(f.allowed)
        return {"title": f.label, "type": "array", "items": item, "minItems": 1,
                "maxItems": len(f.allowed), "uniqueItems": True}
    return schema


def record_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a patient record, derived from the table."""
    fields = _fx.record_fields()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://gmed-cds.org/schema/patient-record.json",
        "title": "Patient record for the gluteus medius driver assessment",
        "description": "Any field may be omitted or null (not assessed) unless required. "
                       "Groups: " + ", ".join(
                           f"{g}: " + ", ".join(f.name for f in fields if f.group == g)
                           for g in _fx.GROUPS),
        "type": "object",
        "properties": {
            "patient_id": {"type": ["string", "null"], "maxLength": 128,
                           "description": "Opaque patient reference (never a name); Unicode "
                                          "text (an unpaired surrogate escape is refused)."},
            **{f.name: _property_schema(f) for f in fields},
        },
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
        "allOf": _reading_rules(),
    }


def _reading_rules() -> list[dict[str, Any]]:
    """The dynamometer's cross-field rules, as :func:`cds.validate.validate_record` applies them:
    one value per side (the torque or one force reading) and a force needs the lever arm and
    body mass. A null is "not recorded" and counts as absent."""
    def given(*names: str) -> dict[str, Any]:
        return {"properties": {n: {"type": "number"} for n in names}, "required": list(names)}

    rules: list[dict[str, Any]] = []
    for torque in dict.fromkeys(f.converts_to for f in _fx.FEATURES if f.converts_to):
        readings = [torque, *(f.name for f in _fx.FEATURES if f.converts_to == torque)]
        for i, a in enumerate(readings):
            for b in readings[i + 1:]:
                rules.append({"not": given(a, b)})
        for force in readings[1:]:
            rules.append({"if": given(force), "then": given("hip_abduction_lever_arm_m",
                                                           "body_mass_kg")})
    return rules


def contract_table() -> list[dict[str, Any]]:
    """The table as plain data (for ``GET /v1/features``, docs and hashing)."""
    rows = []
    for f in _fx.FEATURES:
        row = asdict(f)
        row["code"] = asdict(f.coding)
        row["allowed"] = list(f.allowed)
        row["allowed_labels"] = list(f.allowed_labels)
        row["allowed_codes"] = [[asdict(c) for c in codes] for codes in f.allowed_codes]
        row["derived_from"] = list(f.derived_from)
        row["complaints"] = list(f.complaints)
        row["profiles"] = None if f.profiles is None else list(f.profiles)
        row["condition"] = f.condition
        rows.append(row)
    return rows


_MODEL_RELEVANT = ("name", "kind", "role", "allowed", "ordered", "derived_from", "row_column",
                   "monotone", "complaints", "profiles")


def contract_hash() -> str:
    """SHA-256 of what a trained model reads: its columns, their kinds, encodings, constraints
    and applicability, and the strength norms its derived column divides by.

    Only model columns and the inputs they are derived from count: a red-flag question, a
    dynamometer reading that converts to a torque, labels, codes, units' wording and reference
    ranges can change without retraining; a change to anything hashed here makes an existing
    model refuse to load.
    """
    reads = set(_fx.MODEL_COLUMNS) | {_fx.ROWS.name} | {
        s for c in _fx.MODEL_COLUMNS for s in _fx.column_feature(c).derived_from}
    relevant = [{k: row[k] for k in _MODEL_RELEVANT} for row in contract_table()
                if row["name"] in reads]
    norm_tables = {m: [n.anchors, n.log_sd] for m, n in norms.NORMS.items()}
    blob = json.dumps({"features": relevant, "columns": _fx.MODEL_COLUMNS, "norms": norm_tables,
                       "protocols": norms.PROTOCOL_FACTOR}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
