"""One outbound HTTP(S) request with a hard deadline on the whole exchange and a cap on the body.

The service calls out in three places: issuers' key sets (:mod:`service.security.jwks`), a client's
FHIR server for what the CDS Hooks prefetch left out (:mod:`service.ehr.prefetch`), and an EHR's
SMART authorization server (:mod:`service.security.smart`: discovery GET, token POST). None may let a
remote server hold a worker: ``timeout_s`` bounds the name lookup, connect, TLS, headers and
body together (a timer shuts the socket down, so a server that trickles a byte at a time is cut
too), the body is read up to ``max_bytes``, and redirects are never followed (a bearer token
must not travel to another host). No proxy settings are read: the service reaches only the
hosts it is configured for.

Address filter: a URL with user information (``user@host``) is refused, and so is every address
the name resolves to that is loopback, private, link-local, unspecified, multicast or reserved
(``127.1``, ``2130706433``, ``0``, ``[::1]``, ``169.254.169.254``, ``10.0.0.1``, an IPv4-mapped
``::ffff:127.0.0.1``...), checked on the resolved address the socket connects to, unless the URL's
host, exactly as written (lower-cased), is in ``private_hosts`` (configuration key
``OUTBOUND_PRIVATE_HOSTS``: the tests' and ``make serve``'s loopback EHRs).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import threading
import time
import urllib.parse
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


class FetchError(Exception):
    """The GET failed; ``reason`` is a fixed phrase (never a URL, header or body)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


TIMED_OUT = "timed out"
UNREACHABLE = "unreachable"
TOO_LARGE = "too large"
NOT_HTTP = "url is not http(s)"
PRIVATE_ADDRESS = "address not allowed"


_DNS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gmed-dns")
"""Name lookups run here, so that a slow resolver cannot hold a request past its deadline (a
lookup that outlives it finishes in the background; at most four at a time)."""


def _resolve(host: str, port: int, timeout: float) -> list[Any]:
    """``getaddrinfo`` for a TCP connection, bounded by ``timeout`` seconds."""
    if timeout <= 0:
        raise TimeoutError
    return _DNS.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM).result(timeout)


def public_address(address: str) -> bool:
    """``address`` (an IP literal) is a public unicast address (see the module doc)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified
                or ip.is_multicast or ip.is_reserved)


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def get(url: str, headers: Mapping[str, str], timeout_s: float, max_bytes: int, *,
        private_hosts: Collection[str] = ()) -> Fetched:
    """GET ``url`` (see :func:`request`)."""
    return request("GET", url, headers, None, timeout_s, max_bytes, private_hosts=private_hosts)


def request(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
            timeout_s: float, max_bytes: int, *, private_hosts: Collection[str] = ()) -> Fetched:
    """``method`` ``url`` with ``body``: the answer's status, headers and body (any status;
    redirects are not followed).

    Raises :class:`FetchError` when the URL is not http(s) or carries user information
    (``NOT_HTTP``), its host resolves to an address the filter refuses (``PRIVATE_ADDRESS``; no
    connection is attempted), the exchange does not end within
    ``timeout_s`` (``TIMED_OUT``), the body exceeds ``max_bytes`` (``TOO_LARGE``), or the
    connection or the HTTP exchange fails (``UNREACHABLE``).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise FetchError(NOT_HTTP)
    any_address = parts.hostname.lower() in {h.lower() for h in private_hosts}
    if timeout_s <= 0:
        raise FetchError(TIMED_OUT)
    ends = time.monotonic() + timeout_s
    connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                        else http.client.HTTPConnection)
    try:
        conn = connection_class(parts.hostname, parts.port, timeout=timeout_s)
    except ValueError as e:  # a port that is not a number
        raise FetchError(UNREACHABLE) from e
    expired = threading.Event()
    sockets: list[socket.socket] = []  # held here: the response takes the socket from ``conn``

    def abort() -> None:
        expired.set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv at once

    def connect(address: tuple[str, int], timeout: float, source: Any = None) -> socket.socket:
        error: OSError = OSError("no address")
        resolved = _resolve(*address, ends - time.monotonic())
        if not any_address and not all(public_address(str(a[4][0])) for a in resolved):
            raise FetchError(PRIVATE_ADDRESS)  # one private answer is enough to refuse them all
        for *_, sockaddr in resolved:
            try:
                sock = socket.create_connection(sockaddr[:2], timeout, source)
                break
            except OSError as e:
                error = e
        else:
            raise error
        sockets.append(sock)  # before any TLS handshake, which the deadline must cut too
        if expired.is_set():
            abort()
        return sock

    conn._create_connection = connect  # type: ignore[attr-defined]
    timer = threading.Timer(timeout_s, abort)
    timer.daemon = True
    timer.start()
    try:
        conn.connect()
        sockets.append(conn.sock)  # the TLS socket, when there is one, owns the descriptor now
        if expired.is_set():
            raise TimeoutError
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        conn.request(method, target, body=body, headers={**headers, "Connection": "close"})
        response = conn.getresponse()
        length = response.getheader("Content-Length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise FetchError(TOO_LARGE)
        body = response.read(max_bytes + 1)
        if expired.is_set():
            raise TimeoutError  # the body may have been cut short by the shutdown
        if len(body) > max_bytes:
            raise FetchError(TOO_LARGE)
        return Fetched(response.status, response.headers, body)
    except (OSError, ValueError, http.client.HTTPException) as e:
        timed_out = expired.is_set() or isinstance(e, TimeoutError)
        raise FetchError(TIMED_OUT if timed_out else UNREACHABLE) from e
    finally:
        timer.cancel()
        conn.close()
