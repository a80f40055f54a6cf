"""Which outbound URLs an allowlist admits: one rule for the SMART ``iss``, its endpoints, a
CDS Hooks ``fhirServer``, a FHIR server's ``next`` page links and ``BASE_URL``.

A URL is compared with an allowlisted base URL after parsing both (:func:`urllib.parse.urlsplit`),
never as a string prefix (``http://ehr.example`` must not admit ``http://ehr.example@evil.host``
nor ``http://ehr.example.evil.host``):

* the URL is ``http`` or ``https``, has a host, and carries no user information (``user@``), no
  control character or space, no backslash, and no ``.``/``..`` path segment (plain or
  percent-encoded: a server would resolve ``/fhir/../admin`` out of the base);
* scheme, host (lower-cased, internationalised names in their IDNA ASCII form) and effective
  port (``80``/``443`` when omitted) are equal;
* the base's path is a whole-segment prefix of the URL's: ``http://ehr.example/fhir`` admits
  ``.../fhir`` and ``.../fhir/Patient/1`` but not ``.../fhirX``; a trailing ``/`` on either side
  changes nothing (``http://ehr.example`` and ``http://ehr.example/`` are the same base).

:func:`same_origin` compares scheme, host and port only (the SMART authorization and token
endpoints must be on the ``iss``'s origin).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_PORTS = {"http": 80, "https": 443}
_DOT_SEGMENTS = {".", ".."}


@dataclass(frozen=True)
class Url:
    """A parsed outbound URL: its origin and its path as segments (no empty ones)."""

    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def _host(raw: str) -> str | None:
    host = raw.lower()
    if not host:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    return ascii_host


def parse(url: object) -> Url | None:
    """The parsed URL, or ``None`` when it is not one this service may call (see module doc)."""
    if not isinstance(url, str) or not url or "\\" in url \
            or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        raw_host = parts.hostname
    except ValueError:  # a port that is not a number, or a malformed IPv6 literal
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or "@" in parts.netloc or raw_host is None:
        return None
    host = _host(raw_host)
    if host is None:
        return None
    segments = tuple(s for s in parts.path.split("/") if s)
    if any(urllib.parse.unquote(s) in _DOT_SEGMENTS for s in segments):
        return None
    return Url(scheme, host, port if port is not None else DEFAULT_PORTS[scheme], segments)


def within(url: object, base: object) -> bool:
    """``url`` is on ``base``'s origin and under its path (whole segments)."""
    u, b = parse(url), parse(base)
    if u is None or b is None or u.origin != b.origin:
        return False
    return u.segments[:len(b.segments)] == b.segments


def allowed(url: object, allowlist: Iterable[str]) -> bool:
    """``url`` is :func:`within` one of the allowlisted base URLs."""
    return any(within(url, base) for base in allowlist)


def same_origin(url: object, other: object) -> bool:
    """Both parse, with equal scheme, host and effective port."""
    u, o = parse(url), parse(other)
    return u is not None and o is not None and u.origin == o.origin
