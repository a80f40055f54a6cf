"""JSON out: encoded once, and by orjson (ten times faster than the standard library).

An assessment's result (about 8 KB of JSON) is both stored and returned. :func:`encode_object`
turns it into :class:`EncodedJSON` once; the store writes that text as is into its JSON column
(:func:`encode` is its serialiser), and :func:`object_response` splices it into the response
body. Every other response goes through :class:`FastJSONProvider`, Flask's JSON provider with
orjson underneath; anything orjson cannot encode (an integer beyond 64 bits, a type only Flask
knows) falls back to the standard encoder, so the output never depends on which one ran.
Request bodies are parsed by :mod:`service.http.payload`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_NON_STR_KEYS
_PROVIDER_OPTIONS = _OPTIONS | orjson.OPT_PASSTHROUGH_DATETIME


class EncodedJSON(str):
    """Compact JSON text of an object, already encoded: stored and sent as it is."""


def dumps(value: Any) -> str:
    """Compact JSON text (orjson; the standard encoder for what orjson refuses)."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, separators=(",", ":"))


def encode(value: Any) -> str:
    """The store's JSON serialiser: an :class:`EncodedJSON` passes through untouched."""
    return value if isinstance(value, EncodedJSON) else dumps(value)


def encode_object(value: dict[str, Any]) -> EncodedJSON:
    """A JSON object encoded once, to be stored and returned."""
    return EncodedJSON(dumps(value))


def object_response(first: dict[str, Any], rest: EncodedJSON, status: int = 200,
                    headers: dict[str, str] | None = None, mimetype: str = "application/json"
                    ) -> Response:
    """The JSON object ``{**first, **rest}`` as a response, ``rest`` spliced in as encoded (both
    non-empty; ``first``'s keys come first and repeat none of ``rest``'s)."""
    body = f"{dumps(first)[:-1]},{rest[1:]}"
    return Response(body, status=status, headers=headers, mimetype=mimetype)


class FastJSONProvider(DefaultJSONProvider):
    """``jsonify`` through orjson when compact (always, outside debug); keys keep their order."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs.get("indent") is None and not kwargs.get("sort_keys", self.sort_keys):
            try:  # dates go to Flask's ``default`` (HTTP dates), as with the standard encoder
                return orjson.dumps(obj, default=self.default, option=_PROVIDER_OPTIONS).decode()
            except (TypeError, orjson.JSONEncodeError):
                pass
        return super().dumps(obj, **kwargs)
