"""Reading request bodies: JSON only (415 otherwise), within the limits of :mod:`service.http.limits`
(bytes, also decompressed: 413; nesting: 400; FHIR resources: 413), never a 500."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from cds.errors import FieldError

from . import deadline, limits
from .errors import BadRequest

JSON_TYPES = ("application/json", "application/fhir+json")


def json_body() -> Any:
    """The request body parsed as JSON.

    Raises 415 unless the media type is ``application/json`` or ``application/fhir+json``,
    413 above ``MAX_CONTENT_LENGTH`` (werkzeug enforces it while reading; compressed bodies were
    decompressed under the same cap), 400 if it is not JSON or nests deeper than
    ``JSON_MAX_DEPTH`` (checked before parsing), 413 above ``FHIR_MAX_RESOURCES`` resources,
    503 if the request's deadline passed while the body arrived.
    """
    if request.mimetype not in JSON_TYPES:
        raise UnsupportedMediaType(f"Send {' or '.join(JSON_TYPES)}")
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise
    deadline.check("body")
    try:
        # as json.loads(bytes) would: UTF-8, -16 or -32 by the first bytes
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    except (ValueError, LookupError) as e:
        raise _not_json() from e
    limits.check_depth(text)
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise _not_json() from e
    limits.check_resources(text, body)
    return body


def _not_json() -> BadRequest:
    return BadRequest("The body is not valid JSON",
                      [FieldError("$", "json", "The body is not valid JSON")])


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise
    raise ValueError(f"{name} is not valid JSON")


def require_object(value: Any, where: str = "$") -> dict[str, Any]:
    """``value`` if it is a JSON object, else a 400 naming ``where``."""
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a JSON object",
                         [FieldError(where, "type", f"{where} must be a JSON object")])
    return value
