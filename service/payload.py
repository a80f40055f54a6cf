"""Reading request bodies: JSON only (415 otherwise), size-capped (413), never a 500."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from cds.errors import FieldError

from .errors import BadRequest

JSON_TYPES = ("application/json", "application/fhir+json")


def json_body() -> Any:
    """The request body parsed as JSON.

    Raises 415 unless the media type is ``application/json`` or ``application/fhir+json``,
    413 above ``MAX_CONTENT_LENGTH`` (werkzeug enforces it while reading), 400 if it is not JSON.
    """
    if request.mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(f"Send {' or '.join(JSON_TYPES)}")
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise BadRequest("The body is not valid JSON",
                         [FieldError("$", "json", "The body is not valid JSON")]) from e


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise
    raise ValueError(f"{name} is not valid JSON")


def require_object(value: Any, where: str = "$") -> dict[str, Any]:
    """``value`` if it is a JSON object, else a 400 naming ``where``."""
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a JSON object",
                         [FieldError(where, "type", f"{where} must be a JSON object")])
    return value
