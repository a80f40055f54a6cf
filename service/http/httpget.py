"""One outbound HTTP(S) request with a hard deadline on the whole exchange and a cap on the body.

The service calls out in three places: issuers' key sets (:mod:`service.security.jwks`), a client's
FHIR server for what the CDS Hooks prefetch left out (:mod:`service.ehr.prefetch`), and an EHR's
SMART authorization server (:mod:`service.security.smart`: discovery GET, token POST). None may let a
remote server hold a worker: ``timeout_s`` bounds the name lookup, connect, TLS, headers and
body together (a timer shuts the socket down, so a server that trickles a byte at a time is cut
too; one watchdog thread keeps every deadline of the process, rather than a timer thread per
request), the body is read up to ``max_bytes``, and redirects are never followed (a bearer token
must not travel to another host). No proxy settings are read: the service reaches only the
hosts it is configured for.

Address filter: a URL with user information (``user@host``) is refused, and so is every address
the name resolves to that is loopback, private, link-local, unspecified, multicast or reserved
(``127.1``, ``2130706433``, ``0``, ``[::1]``, ``169.254.169.254``, ``10.0.0.1``, an IPv4-mapped
``::ffff:127.0.0.1``...), checked on the resolved address the socket connects to, unless the URL's
host, exactly as written (lower-cased), is in ``private_hosts`` (configuration key
``OUTBOUND_PRIVATE_HOSTS``: the tests' and ``make serve``'s loopback EHRs).

A :class:`Session` keeps a connection open between the requests made through it to one origin
(the pages of one prefetch query): each request still has its own deadline and cap, and a
connection is kept only after a response read to its end that did not ask to close it.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import ipaddress
import itertools
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Mapping
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
    """``getaddrinfo`` for a TCP connection, bounded by ``timeout`` seconds (an IP literal needs
    no lookup: it is converted in this thread)."""
    if timeout <= 0:
        raise TimeoutError
    if _is_ip_literal(host):
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    return _DNS.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM).result(timeout)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class _Watchdog:
    """One daemon thread per process calling each registered function at its deadline, unless
    cancelled first: the outbound requests' deadlines without a timer thread per request."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, list[Any]]] = []
        self._order = itertools.count()
        self._pid = -1

    def watch(self, at: float, fn: Callable[[], None]) -> list[Any]:
        """Call ``fn`` at ``at`` (``time.monotonic()``); returns a handle for :meth:`cancel`."""
        handle: list[Any] = [fn]
        with self._cond:
            if self._pid != os.getpid():  # first use in this process (gunicorn forks)
                self._pid = os.getpid()
                self._heap = []
                threading.Thread(target=self._run, name="gmed-outbound-watchdog",
                                 daemon=True).start()
            heapq.heappush(self._heap, (at, next(self._order), handle))
            if self._heap[0][2] is handle:
                self._cond.notify()
        return handle

    @staticmethod
    def cancel(handle: list[Any]) -> None:
        handle[0] = None  # left in the heap; dropped when its time comes

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2][0] is None:
                        heapq.heappop(self._heap)  # cancelled
                    wait = None if not self._heap else self._heap[0][0] - time.monotonic()
                    if wait is not None and wait <= 0:
                        fn = heapq.heappop(self._heap)[2][0]
                        break
                    self._cond.wait(wait)
            if fn is not None:
                with contextlib.suppress(Exception):
                    fn()


_WATCHDOG = _Watchdog()


def _quick_ack(sock: socket.socket) -> None:
    """Acknowledge at once (Linux): on a kept connection, a server that writes headers and body
    in two segments with Nagle on would otherwise wait out our delayed ACK (~40 ms a page)."""
    option = getattr(socket, "TCP_QUICKACK", None)
    if option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)


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


class Session:
    """Connections kept open for the next request to the same origin (scheme, host, port), until
    :meth:`close` (or the end of a ``with`` block). Not shared between threads."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}

    def take(self, origin: tuple[str, str, int | None]) -> http.client.HTTPConnection | None:
        return self._open.pop(origin, None)

    def keep(self, origin: tuple[str, str, int | None], conn: http.client.HTTPConnection) -> None:
        previous = self._open.pop(origin, None)
        if previous is not None:
            previous.close()
        self._open[origin] = conn

    def close(self) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def get(url: str, headers: Mapping[str, str], timeout_s: float, max_bytes: int, *,
        private_hosts: Collection[str] = (), session: Session | None = None) -> Fetched:
    """GET ``url`` (see :func:`request`)."""
    return request("GET", url, headers, None, timeout_s, max_bytes, private_hosts=private_hosts,
                   session=session)


def request(method: str, url: str, headers: Mapping[str, str], body: bytes | None,
            timeout_s: float, max_bytes: int, *, private_hosts: Collection[str] = (),
            session: Session | None = None) -> Fetched:
    """``method`` ``url`` with ``body``: the answer's status, headers and body (any status;
    redirects are not followed). With ``session``: over its open connection to the URL's
    origin if it has one (a connection the server closed meanwhile is replaced once), and the
    connection is left open in it afterwards if the exchange allows.

    Raises :class:`FetchError` when the URL is not http(s) or carries user information
    (``NOT_HTTP``), its host resolves to an address the filter refuses (``PRIVATE_ADDRESS``; no
    connection is attempted), the exchange does not end within
    ``timeout_s`` (``TIMED_OUT``), the body exceeds ``max_bytes`` (``TOO_LARGE``), or the
    connection or the HTTP exchange fails (``UNREACHABLE``).

    Long: one exchange under one deadline; ``abort`` and ``connect`` are closures over its
    state (the sockets to shut, the expiry, the address filter) and read best beside it.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise FetchError(NOT_HTTP)
    any_address = parts.hostname.lower() in {h.lower() for h in private_hosts}
    if timeout_s <= 0:
        raise FetchError(TIMED_OUT)
    ends = time.monotonic() + timeout_s
    try:
        origin = (parts.scheme, parts.hostname.lower(), parts.port)
    except ValueError as e:  # a port that is not a number
        raise FetchError(UNREACHABLE) from e
    kept = session.take(origin) if session is not None else None
    if kept is not None:
        try:
            return _exchange(kept, method, parts, headers, body, timeout_s, max_bytes, ends,
                             session, origin, any_address)
        except FetchError as e:
            stale = isinstance(e.__cause__, http.client.RemoteDisconnected | BrokenPipeError
                               | ConnectionResetError)
            if not stale or time.monotonic() >= ends:
                raise  # a kept connection the server closed meanwhile: once more, anew
    connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                        else http.client.HTTPConnection)
    try:
        conn = connection_class(parts.hostname, parts.port,
                                timeout=max(ends - time.monotonic(), 1e-3))
    except ValueError as e:  # a port that is not a number
        raise FetchError(UNREACHABLE) from e
    return _exchange(conn, method, parts, headers, body, timeout_s, max_bytes, ends, session,
                     origin, any_address)


def _exchange(conn: http.client.HTTPConnection, method: str, parts: urllib.parse.SplitResult,
              headers: Mapping[str, str], body: bytes | None, timeout_s: float, max_bytes: int,
              ends: float, session: Session | None, origin: tuple[str, str, int | None],
              any_address: bool) -> Fetched:
    """One exchange on ``conn`` (connected here unless a session kept it open), cut at ``ends``
    by the watchdog; ``conn`` goes back to ``session`` only when fully read and reusable.

    Long: the address filter, the watchdog's abort and the reuse decision are closures over one
    exchange's state (its sockets, its expiry); split apart, that state would travel between
    functions, and this is the code that keeps a remote server from reaching a private address.
    """
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
    if time.monotonic() >= ends:
        raise FetchError(TIMED_OUT)
    if conn.sock is not None:  # kept open by the session: the deadline cuts this socket
        sockets.append(conn.sock)
        conn.sock.settimeout(max(ends - time.monotonic(), 1e-3))
    watch = _WATCHDOG.watch(ends, abort)
    keep = False
    try:
        if conn.sock is None:
            conn.connect()
            sockets.append(conn.sock)  # type: ignore[arg-type]  # set by connect(); TLS owns it
        if expired.is_set():
            raise TimeoutError
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        conn.request(method, target, body=body,
                     headers={**headers, "Connection": "keep-alive" if session else "close"})
        if session is not None and conn.sock is not None:
            _quick_ack(conn.sock)
        response = conn.getresponse()
        length = response.getheader("Content-Length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise FetchError(TOO_LARGE)
        body = response.read(max_bytes + 1)
        if expired.is_set():
            raise TimeoutError  # the body may have been cut short by the shutdown
        if len(body) > max_bytes:
            raise FetchError(TOO_LARGE)
        keep = session is not None and response.isclosed() and not response.will_close
        return Fetched(response.status, response.headers, body)
    except (OSError, ValueError, http.client.HTTPException) as e:
        timed_out = expired.is_set() or isinstance(e, TimeoutError)
        raise FetchError(TIMED_OUT if timed_out else UNREACHABLE) from e
    finally:
        _WATCHDOG.cancel(watch)
        if keep and not expired.is_set() and session is not None:
            session.keep(origin, conn)
        else:
            conn.close()
