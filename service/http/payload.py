"""Reading request bodies: JSON only (415 otherwise), within the limits of :mod:`service.http.limits`
(bytes, also decompressed: 413; nesting: 400; FHIR resources: 413), never a 500.

Parsed by orjson (a hook call of 52 FHIR resources in about 40 % of the standard parser's time) when it
is UTF-8 and holds no integer of 19 digits or more; the standard parser reads what orjson
refuses or would read differently (a UTF-16 or -32 body, a byte-order mark, a lone surrogate
escape, an integer past 64 bits that orjson makes a float), and words every refusal, so both
accept and refuse the same bodies, with the same values (a test compares them).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from cds.errors import FieldError

from . import deadline, limits
from .errors import BadRequest

JSON_TYPES = ("application/json", "application/fhir+json")
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_NUMBER = b"0" * 19  # 19 digits in a row: maybe an integer orjson cannot hold


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
        encoding = json.detect_encoding(raw)
        text = raw.decode(encoding, "surrogatepass")
    except (ValueError, LookupError) as e:
        raise _not_json() from e
    limits.check_depth(text)
    body = parse(raw, text, encoding)
    limits.check_resources(text, body)
    return body


def parse(raw: bytes, text: str, encoding: str) -> Any:
    """``raw`` (``text`` decoded from ``encoding``) parsed: by orjson where it reads exactly
    what the standard parser reads (see the module doc), else by the standard parser; a 400
    if neither does. NaN and Infinity are refused by both."""
    if encoding == "utf-8" and _LONG_NUMBER not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # refused: the standard parser decides, as before
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise _not_json() from e


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
