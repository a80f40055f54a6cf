"""Issuers' signing keys (JWKS): read from files, fetched from allowlisted URLs, cached, rotated.

One :class:`KeyCache` per app (per gunicorn worker) holds every key set the service has seen:

* **URL** (an allowlisted ``jku``): fetched over HTTP(S) with a hard deadline on the whole fetch
  (``JWKS_FETCH_TIMEOUT``; connect, headers and body together, so a server that trickles bytes
  cannot hold a worker) and a size cap (``JWKS_MAX_BYTES``); no redirects. Cached for the
  response's ``Cache-Control: max-age`` clamped to ``[JWKS_CACHE_MIN_SECONDS,
  JWKS_CACHE_MAX_SECONDS]`` (``JWKS_CACHE_SECONDS`` without one; ``no-store``/``no-cache`` = the
  minimum). Cached keys keep working while the endpoint is down, until that lifetime ends; then
  tokens are refused until a fetch succeeds.
* **File** (``jwks_file``): re-read when its identity (inode, mtime, size) changes, so an atomic
  replace (write beside, ``rename``) is picked up at the next request. A file that is not a valid
  JWKS keeps the last good keys (a half-written file must not lock every caller out); a missing
  file refuses every token.
* **Inline** (``jwks``): parsed once.

Rotation: a ``kid`` not in a fresh cached set triggers one refresh. Fetches of one URL are
single-flight (one thread fetches; the others wait for its result, never longer than the fetch
deadline) and rate-limited: after a success no new fetch for ``JWKS_MIN_REFRESH_SECONDS`` (unknown
kids cannot cause a storm), after a failure none for ``JWKS_RETRY_SECONDS`` (negative caching).
Failures raise :class:`JwksError`, whose ``reason`` is a fixed phrase: no key, body or URL is ever
logged.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from flask import Flask, current_app

from ..config import DEFAULTS
from ..http import httpget

log = logging.getLogger("service")

EXTENSION = "gmed_jwks"
WAIT_GRACE_S = 0.5  # a waiter outlives the fetcher's deadline by this much at most
_MAX_AGE = re.compile(r'(?:^|,)\s*max-age\s*=\s*"?(\d{1,10})"?\s*(?=,|$)', re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*no-(?:store|cache)\s*(?=,|=|$)", re.IGNORECASE)


class JwksError(Exception):
    """No usable key set; ``reason`` is a fixed phrase, safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KeySet:
    """The keys of one JWKS by ``kid``; a ``kid`` given to several keys is left out (ambiguous)."""

    by_kid: dict[str, dict[str, Any]]
    _parsed: dict[tuple[str, str], jwt.PyJWK] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.by_kid)

    def key(self, kid: str, alg: str) -> jwt.PyJWK:
        """The verification key for ``kid`` used with ``alg`` (built once, then reused)."""
        parsed = self._parsed.get((kid, alg))
        if parsed is None:
            parsed = self._parsed[(kid, alg)] = jwt.PyJWK(self.by_kid[kid], algorithm=alg)
        return parsed


def parse_jwks(raw: bytes) -> KeySet:
    """A :class:`KeySet` from a JWKS document, or :class:`JwksError` (never anything else)."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise JwksError("jwks is not json") from e
    return key_set(doc)


def key_set(doc: object) -> KeySet:
    """A :class:`KeySet` from a decoded JWKS (``{"keys": [...]}``), or :class:`JwksError`."""
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise JwksError("jwks has no key list")
    by_kid: dict[str, dict[str, Any]] = {}
    ambiguous: set[str] = set()
    for jwk in keys:
        if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str):
            if jwk["kid"] in by_kid:
                ambiguous.add(jwk["kid"])
            by_kid[jwk["kid"]] = jwk
    return KeySet({kid: jwk for kid, jwk in by_kid.items() if kid not in ambiguous})


@dataclass(frozen=True)
class Limits:
    """The cache's settings (configuration keys ``JWKS_*``, see the module docstring)."""

    cache_s: float = DEFAULTS["JWKS_CACHE_SECONDS"]
    cache_min_s: float = DEFAULTS["JWKS_CACHE_MIN_SECONDS"]
    cache_max_s: float = DEFAULTS["JWKS_CACHE_MAX_SECONDS"]
    min_refresh_s: float = DEFAULTS["JWKS_MIN_REFRESH_SECONDS"]
    retry_s: float = DEFAULTS["JWKS_RETRY_SECONDS"]
    timeout_s: float = DEFAULTS["JWKS_FETCH_TIMEOUT"]
    max_bytes: int = DEFAULTS["JWKS_MAX_BYTES"]

    @classmethod
    def from_config(cls, config: Any) -> Limits:
        """The settings of an app's configuration (defaults in :mod:`service.config`)."""
        return cls(
            cache_s=float(config["JWKS_CACHE_SECONDS"]),
            cache_min_s=float(config["JWKS_CACHE_MIN_SECONDS"]),
            cache_max_s=float(config["JWKS_CACHE_MAX_SECONDS"]),
            min_refresh_s=float(config["JWKS_MIN_REFRESH_SECONDS"]),
            retry_s=float(config["JWKS_RETRY_SECONDS"]),
            timeout_s=float(config["JWKS_FETCH_TIMEOUT"]),
            max_bytes=int(config["JWKS_MAX_BYTES"]))

    def lifetime(self, cache_control: str | None) -> float:
        """Seconds to keep a fetched set: its ``max-age`` within the bounds, else the default."""
        age = self.cache_s
        if cache_control and _NO_CACHE.search(cache_control):
            age = 0.0
        elif cache_control and (match := _MAX_AGE.search(cache_control)):
            age = float(match.group(1))
        return min(max(age, self.cache_min_s), self.cache_max_s)


def fetch(url: str, timeout_s: float, max_bytes: int, *,
          private_hosts: tuple[str, ...] = ()) -> tuple[KeySet, str | None]:
    """GET a JWKS: its key set and ``Cache-Control``. The whole exchange ends by ``timeout_s``,
    the body is capped at ``max_bytes``, redirects are refused, and so are private addresses
    unless the host is in ``private_hosts`` (:mod:`service.http.httpget`)."""
    try:
        fetched = httpget.get(url, {"Accept": "application/json"}, timeout_s, max_bytes,
                              private_hosts=private_hosts)
    except httpget.FetchError as e:
        raise JwksError(f"jwks {e.reason}" if e.reason != httpget.TIMED_OUT
                        else "jwks fetch timed out") from e
    if fetched.status != 200:
        raise JwksError(f"jwks answered http {fetched.status}")
    return parse_jwks(fetched.body), fetched.headers.get("Cache-Control")


@dataclass
class _Entry:
    keys: KeySet | None = None
    expires: float = float("-inf")  # clock time the keys lapse (URL sets only)
    retry_at: float = float("-inf")  # no fetch (or file read) before this clock time
    error: str | None = None  # the last failure's reason, while it stands
    inflight: threading.Event | None = None
    identity: tuple[int, int, int] | None = None  # a file's (inode, mtime_ns, size) last read
    fetches: int = 0
    failures: int = 0


class KeyCache:
    """Key sets by source, with the refresh rules of the module docstring. Thread-safe.

    ``clock`` (monotonic seconds) and ``fetcher`` are parameters so tests can move time and
    count fetches; the service uses :func:`time.monotonic` and :func:`fetch`."""

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic,
                 fetcher: Callable[[str, float, int], tuple[KeySet, str | None]] = fetch) -> None:
        self.limits = limits
        self.clock = clock
        self.fetcher = fetcher
        self._lock = threading.Lock()
        self._urls: dict[str, _Entry] = {}
        self._files: dict[str, _Entry] = {}
        self._inline: dict[int, tuple[object, KeySet]] = {}

    def stats(self, source: str) -> tuple[int, int]:
        """(fetches or file reads, failures) of a URL or file so far."""
        entry = self._urls.get(source) or self._files.get(source) or _Entry()
        return entry.fetches, entry.failures

    def for_inline(self, jwks: object, kid: str) -> KeySet:
        """The configured inline set, if it holds ``kid``."""
        hit = self._inline.get(id(jwks))
        if hit is None or hit[0] is not jwks:
            keys = key_set(jwks)
            hit = self._inline[id(jwks)] = (jwks, keys)
        if kid not in hit[1].by_kid:
            raise JwksError("unknown kid")
        return hit[1]

    def for_url(self, url: str, kid: str) -> KeySet:
        """The set fetched from ``url``, if it holds ``kid``: cached while fresh, refreshed once
        (single-flight, rate-limited) when it has lapsed or lacks ``kid``."""
        settled = False  # once a fetch has ended (ours or awaited), decide without another
        while True:
            with self._lock:
                entry = self._urls.setdefault(url, _Entry())
                now = self.clock()
                fresh = entry.keys is not None and now < entry.expires
                if fresh and entry.keys is not None and kid in entry.keys.by_kid:
                    return entry.keys
                event = entry.inflight
                mine = event is None and not settled and now >= entry.retry_at
                if mine:
                    event = entry.inflight = threading.Event()
            if settled or event is None:
                raise JwksError("unknown kid" if fresh else entry.error or "jwks expired")
            if mine:
                self._refresh(url, entry, event)
            elif not event.wait(self.limits.timeout_s + WAIT_GRACE_S):
                raise JwksError("jwks fetch still running")
            settled = True

    def _refresh(self, url: str, entry: _Entry, event: threading.Event) -> None:
        limits = self.limits
        try:
            keys, cache_control = self.fetcher(url, limits.timeout_s, limits.max_bytes)
        except Exception as e:  # a hostile endpoint must never turn into a 500
            reason = e.reason if isinstance(e, JwksError) else "jwks fetch failed"
            with self._lock:
                entry.error, entry.retry_at = reason, self.clock() + limits.retry_s
                entry.failures += 1
            log.warning("jwks fetch failed", extra={"reason": reason, "count": entry.failures})
        else:
            lifetime = limits.lifetime(cache_control)
            with self._lock:
                now = self.clock()
                entry.keys, entry.expires, entry.error = keys, now + lifetime, None
                entry.retry_at = now + min(limits.min_refresh_s, lifetime)
            log.info("jwks fetched", extra={"count": len(keys)})
        finally:
            with self._lock:
                entry.fetches += 1
                entry.inflight = None
            event.set()

    def for_file(self, path: str, kid: str) -> KeySet:
        """The set in file ``path``, if it holds ``kid``; re-read when the file was replaced."""
        try:
            st = os.stat(path)
        except OSError as e:
            raise JwksError("jwks file unreadable") from e
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            entry = self._files.setdefault(path, _Entry())
            if entry.identity != identity:
                entry.identity = identity  # read each version once, even a broken one
                self._read_file(path, entry, st.st_size)
            keys = entry.keys
        if keys is None:
            raise JwksError(entry.error or "jwks file unreadable")
        if kid not in keys.by_kid:
            raise JwksError("unknown kid")
        return keys

    def _read_file(self, path: str, entry: _Entry, size: int) -> None:
        entry.fetches += 1
        try:
            if size > self.limits.max_bytes:
                raise JwksError("jwks too large")
            with open(path, "rb") as f:
                keys = parse_jwks(f.read(self.limits.max_bytes + 1))
        except (OSError, JwksError) as e:
            entry.failures += 1
            entry.error = e.reason if isinstance(e, JwksError) else "jwks file unreadable"
            log.warning("jwks file refused, last good keys kept",
                        extra={"reason": entry.error, "count": entry.failures})
            return
        entry.keys, entry.error = keys, None
        log.info("jwks file read", extra={"count": len(keys)})


def get_key_cache() -> KeyCache:
    """This app's :class:`KeyCache`."""
    cache: KeyCache = current_app.extensions[EXTENSION]
    return cache


def init_app(app: Flask) -> None:
    """Give the app its key cache, with the ``JWKS_*`` settings of its configuration (and its
    ``OUTBOUND_PRIVATE_HOSTS``)."""
    private_hosts = tuple(app.config["OUTBOUND_PRIVATE_HOSTS"])
    app.extensions[EXTENSION] = KeyCache(Limits.from_config(app.config),
                                         fetcher=functools.partial(fetch,
                                                                   private_hosts=private_hosts))
