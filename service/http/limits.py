"""Size limits a request body must keep, checked before it costs memory or CPU.

* **Bytes**: ``MAX_CONTENT_LENGTH`` caps the body as sent (werkzeug, 413) and, for a body sent with
  ``Content-Encoding: gzip`` or ``deflate``, its decompressed size too. Decompression is
  incremental with bounded output (:func:`inflate`): a bomb that would expand to gigabytes
  (deflate's ratio is at most ~1032:1, so 1 GiB of zeros fits in ~1 MB, under the cap) is refused
  with 413 after reading at most the cap plus one chunk (in practice one 64 KiB chunk), holding
  at most about the cap in memory. Any other encoding is 415. The decompressed body replaces the
  input stream, so every route (JSON and the clinician page's form) reads it as if sent plain.
* **Nesting**: ``JSON_MAX_DEPTH`` (400, field ``$``, rule ``maxDepth``), measured on the text by
  C-speed scans (strings blanked, brackets summed) before ``json.loads`` recurses into it.
* **Resources**: ``FHIR_MAX_RESOURCES`` objects with a ``resourceType`` per request, all bundles
  and prefetch keys together (413, issue ``too-costly``, field = the array holding the most),
  counted on the parsed body by an iterative walk. The resources the service fetches from the
  client's FHIR server for a CDS Hooks call count against the same cap, page by page
  (:class:`ResourceBudget`): the fetch stops at the page that passes it, with the same 413.
* **FHIR arrays**: where resources belong (a body that is a list, a ``Bundle.entry``, a fetched
  page's entries) at most ``FHIR_MAX_RESOURCES`` items, whatever they are (413, rule
  ``maxItems``): ``[0,0,...]`` holds no resource but a million items.

The nesting and resource checks have fast paths (fewer brackets, or fewer ``"resourceType"``
strings, than the limit) so an ordinary request pays a few string counts.
"""

from __future__ import annotations

import io
import re
import zlib
from collections import Counter
from collections.abc import Mapping
from itertools import accumulate
from typing import IO, Any

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wsgi import get_input_stream

from cds.errors import FieldError

from .errors import BadRequest, TooCostly

CHUNK = 64 << 10
_SCALARS = frozenset({str, int, float, bool, type(None)})
ENCODINGS = ("gzip", "x-gzip", "deflate")
# a string, or an unterminated one to the end of the text: every match attempt succeeds at its
# first try, so the scan is linear whatever the body (no retry from each escaped quote)
_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S]?[^"\\]*)*(?:"|\Z)')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_NOT_SKELETON = bytes(c for c in range(256) if c not in b'[]{}"')
_STEP = [0] * 256
for _char, _step in ((b"[", 1), (b"{", 1), (b"]", -1), (b"}", -1)):
    _STEP[_char[0]] = _step


def _decompressor(encoding: str, head: bytes) -> Any:
    if encoding != "deflate":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    # HTTP "deflate" is zlib-wrapped (RFC 9110), but some clients send raw deflate: the two-byte
    # zlib header (method 8, check bits a multiple of 31) tells them apart
    wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


def inflate(stream: IO[bytes], encoding: str, cap: int) -> bytes:
    """The decompressed body, read ``CHUNK`` bytes at a time; 413 as soon as it exceeds ``cap``.

    Each ``decompress`` call may produce at most what is left under the cap plus one byte, so no
    step holds more than the cap in memory, however dense the input. Concatenated gzip members
    are read one after the other; a truncated or corrupt stream is a 400.
    """
    out = bytearray()
    engine: Any = None
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        pending = chunk
        while pending:
            if engine is None:
                engine = _decompressor(encoding, pending)
            try:
                out += engine.decompress(pending, cap - len(out) + 1)
            except zlib.error as e:
                raise _not_decodable(encoding) from e
            if len(out) > cap:
                raise RequestEntityTooLarge(
                    f"The body exceeds {cap} bytes once decompressed (MAX_CONTENT_LENGTH)")
            if engine.unconsumed_tail:
                pending = engine.unconsumed_tail
            elif engine.eof:
                pending, engine = engine.unused_data, None  # another gzip member, or nothing
            else:
                pending = b""
    if engine is not None and not engine.eof:
        raise _not_decodable(encoding)
    return bytes(out)


def _not_decodable(encoding: str) -> BadRequest:
    message = f"The body is not valid {encoding} data"
    return BadRequest(message, [FieldError("$", "encoding", message)])


def decode_body() -> None:
    """``before_request``: undo ``Content-Encoding`` (gzip, deflate) under the byte cap; 415 for
    any other encoding. Registered after authentication: an anonymous caller's body is never
    decompressed."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return
    if encoding not in ENCODINGS:
        raise UnsupportedMediaType("Content-Encoding: only gzip or deflate (or none)")
    environ = request.environ
    cap = int(current_app.config["MAX_CONTENT_LENGTH"])
    body = inflate(get_input_stream(environ, max_content_length=cap), encoding, cap)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_CONTENT_ENCODING", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["gmed.content_encoding"] = encoding
    for cached in ("content_length", "stream", "content_encoding"):
        request.__dict__.pop(cached, None)  # werkzeug caches these on first use


def json_depth(text: str, limit: int) -> int:
    """The nesting depth of JSON ``text`` if it may exceed ``limit`` (else a lower bound: 0).

    No recursion and no Python loop over characters. Escaped backslashes are dropped first
    (left to right, as a parser pairs them); if no quote is then escaped, every quote delimits a
    string, so the text reduced (in C) to brackets and quotes, split on quotes, loses the
    strings' brackets; otherwise a regex blanks the strings. The depth is the running sum's
    maximum over the brackets left (C iterators: ~40 ns a bracket).
    """
    if text.count("[") + text.count("{") <= limit:
        return 0
    unescaped = text.replace("\\\\", "")
    if '\\"' not in unescaped:
        skeleton = unescaped.encode("utf-8", "surrogatepass").translate(None, _NOT_SKELETON)
        brackets = b"".join(skeleton.split(b'"')[::2])
    else:
        brackets = _NOT_BRACKET.sub("", _STRING.sub('""', text)).encode()
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_depth(text: str) -> None:
    """400 (``$``, ``maxDepth``) if ``text`` nests deeper than ``JSON_MAX_DEPTH``."""
    limit = int(current_app.config["JSON_MAX_DEPTH"])
    if json_depth(text, limit) > limit:
        message = f"The body nests deeper than {limit} levels"
        raise BadRequest(message, [FieldError("$", "maxDepth", message)])


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]" if parent != "$" else f"$[{key}]"
    return key if parent == "$" else f"{parent}.{key}"


def over_resources(body: Any, limit: int) -> str | None:
    """``None`` if ``body`` holds at most ``limit`` FHIR resources; else the field to blame: the
    array holding the most of them (``prefetch.observations.entry``), or the resource's own
    field when it sits in no array.

    A resource is any JSON object with a string ``resourceType``, at any depth (bundle entries,
    prefetch keys, contained resources). Iterative: the body's depth is already bounded, but a
    wide body should not cost a Python frame per node.
    """
    counts: Counter[str] = Counter()
    stack: list[tuple[Any, str, str | None]] = [(body, "$", None)]
    while stack:
        value, path, array = stack.pop()
        if isinstance(value, Mapping):
            if isinstance(value.get("resourceType"), str):
                counts[array or path] += 1
            stack.extend((v, _path(path, k), array) for k, v in value.items()
                         if isinstance(v, Mapping | list))
        elif isinstance(value, list):
            stack.extend((v, _path(path, i), path) for i, v in enumerate(value)
                         if isinstance(v, Mapping | list))
    if sum(counts.values()) <= limit:
        return None
    return counts.most_common(1)[0][0]


def count_resources(value: Any, stop_above: int) -> int:
    """The FHIR resources in ``value`` (objects with a string ``resourceType``, at any depth),
    counted up to the first one past ``stop_above`` (the walk stops there).

    Parsed JSON is dicts, lists and scalars: those are told apart by their exact type (an
    ``isinstance`` against ``Mapping`` costs an ABC check per value, six times the walk); any
    other value still goes through ``isinstance``, so a ``Mapping`` that is not a dict counts."""
    count = 0
    stack = [value]
    pop, push = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is dict or (kind is not list and isinstance(item, Mapping)):
            if isinstance(item.get("resourceType"), str):
                count += 1
                if count > stop_above:
                    return count
            push(item.values())
        elif kind is list or isinstance(item, list):
            push(item)
    return count


def fhir_items(value: Any) -> tuple[int, str]:
    """How many items sit where FHIR resources belong in ``value``, and where: the items of a
    list (``$``), or the entries of a Bundle (``entry``)."""
    if isinstance(value, list):
        return len(value), "$"
    if isinstance(value, Mapping) and value.get("resourceType") == "Bundle" \
            and isinstance(value.get("entry"), list):
        return len(value["entry"]), "entry"
    return 0, "$"


def check_fhir_items(value: Any, where: str = "$") -> None:
    """413 (rule ``maxItems``) if a FHIR input (a list of resources, a Bundle) has more items
    than ``FHIR_MAX_RESOURCES``, resources or not."""
    limit = int(current_app.config["FHIR_MAX_RESOURCES"])
    items, field = fhir_items(value)
    if items > limit:
        name = where if field == "$" else _path(where, field)
        message = f"{name}: more than {limit} items where FHIR resources belong " \
                  "(FHIR_MAX_RESOURCES)"
        raise TooCostly(message, [FieldError(name, "maxItems", message)])


class ResourceBudget:
    """``FHIR_MAX_RESOURCES`` for one CDS Hooks call: the resources of its body and of every page
    fetched for it, together. The body is counted when the first page arrives (most calls fetch
    nothing and pay nothing)."""

    def __init__(self, limit: int, body: Any) -> None:
        self.limit = limit
        self._body = body
        self.used: int | None = None

    def spend(self, page: Any, where: str) -> None:
        """Count a fetched ``page`` (at ``where``, e.g. ``prefetch.observations``); 413 naming
        the cap once the call's resources pass it, or if the page has more entries than it."""
        if self.used is None:
            self.used = count_resources(self._body, self.limit)
        self.used += count_resources(page, self.limit - self.used)
        items, _ = fhir_items(page)
        if self.used > self.limit or items > self.limit:
            message = (f"{where}: the resources fetched from the FHIR server, with those of the "
                       f"request, pass {self.limit} (FHIR_MAX_RESOURCES)")
            raise TooCostly(message, [FieldError(where, "maxResources", message)])


def check_resources(text: str, body: Any) -> None:
    """413 (issue ``too-costly``) above ``FHIR_MAX_RESOURCES`` resources, naming the field."""
    limit = int(current_app.config["FHIR_MAX_RESOURCES"])
    if text.count("{") <= limit:
        return  # fewer objects than the limit
    if "\\u" not in text and text.count('"resourceType"') <= limit:
        return  # without escapes every resourceType key is spelt out, and there are few

    field = over_resources(body, limit)
    if field is not None:
        message = f"{field}: more than {limit} FHIR resources in one request (FHIR_MAX_RESOURCES)"
        raise TooCostly(message, [FieldError(field, "maxResources", message)])


def init_app(app: Flask) -> None:
    """Decode compressed bodies before any view reads them (register after authentication)."""
    app.before_request(decode_body)
