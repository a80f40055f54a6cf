"""JSON in and out: request bodies (JSON only, 415 otherwise; size-capped, 413; never a 500) and
results encoded once.

An assessment's result (about 8 KB of JSON) is both stored and returned. :func:`encode` turns it
into :class:`EncodedJSON` once; the store writes that text as is into its JSON column, and
:func:`object_response` splices it into the response body, instead of encoding it twice.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from cds.errors import FieldError

from .errors import BadRequest

JSON_TYPES = ("application/json", "application/fhir+json")


class EncodedJSON(str):
    """JSON text of an object, already encoded (compact): stored and sent as it is."""


def encode(value: Any) -> EncodedJSON | str:
    """Compact JSON; an :class:`EncodedJSON` passes through (the store's JSON serialiser)."""
    if isinstance(value, EncodedJSON):
        return value
    return json.dumps(value, separators=(",", ":"))


def encode_object(value: dict[str, Any]) -> EncodedJSON:
    """A JSON object encoded once, to be stored and returned."""
    return EncodedJSON(json.dumps(value, separators=(",", ":")))


def object_response(first: dict[str, Any], rest: EncodedJSON, status: int = 200,
                    headers: dict[str, str] | None = None, mimetype: str = "application/json"
                    ) -> Response:
    """The JSON object ``{**first, **rest}`` as a response, ``rest`` spliced in as encoded (both
    non-empty; ``first``'s keys come first and repeat none of ``rest``'s)."""
    body = f"{json.dumps(first, separators=(',', ':'))[:-1]},{rest[1:]}"
    return Response(body, status=status, headers=headers, mimetype=mimetype)


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
