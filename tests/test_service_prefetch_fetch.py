"""Fetching what the CDS Hooks prefetch left out: the pages of a query share one time budget
(never past the request deadline), and the bearer token never follows a redirect."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask

from service.ehr import prefetch as prefetch_module
from service.http import httpget
from tests.service_fixtures import hook_call, runner_prefetch

HOOK = "/cds-services/gmed-driver"
AUTH = {"access_token": "secret-token", "token_type": "Bearer"}


class _Server:
    """A loopback HTTP server whose answer is a function of the request; it records requests."""

    def __init__(self, answer: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()  # ends any answer that waits, at teardown
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Authorization")))
                answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], _Server]]:
    started: list[_Server] = []

    def start(answer: Callable[[BaseHTTPRequestHandler], None]) -> _Server:
        started.append(_Server(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes = b"",
          headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def test_the_pages_of_a_query_share_one_budget_cut_at_the_request_deadline(
        make_app: Callable[..., Flask], servers: Any) -> None:
    """Each page takes 0.6 s and links to a next one. FHIR_TIMEOUT is 30 s, so only the
    request's 1 s deadline limits the fetch: page 2 is cut, page 3 is never asked for, and the
    answer is a 503 (before, every page had its own timeout: 5 pages, then the next query)."""
    def slow_pages(handler: BaseHTTPRequestHandler) -> None:
        server_base = f"http://127.0.0.1:{handler.server.server_address[1]}/fhir"
        page = int(handler.path.rsplit("page=", 1)[1]) if "page=" in handler.path else 1
        body = (b'{"resourceType": "Bundle", "type": "searchset", "entry": [], "link": '
                b'[{"relation": "next", "url": "' + f"{server_base}/Observation?page={page + 1}"
                .encode() + b'"}]}')
        if fhir.release.wait(0.6):
            return
        _send(handler, 200, body, {"Content-Type": "application/fhir+json"})

    fhir = servers(slow_pages)
    app = make_app(REQUEST_DEADLINE=1.0, FHIR_TIMEOUT=30.0, FHIR_SERVER_ALLOWLIST=[fhir.base])
    prefetch = runner_prefetch()
    del prefetch["observations"]  # the only query to fetch: the others are prefetched
    call = hook_call(prefetch=prefetch, fhirServer=fhir.base, fhirAuthorization=AUTH)
    response = app.test_client().post(HOOK, json=call)
    assert response.status_code == 503
    assert response.get_json()["issue"][0]["code"] == "timeout"
    assert len(fhir.requests) == 2  # page 1 answered at 0.6 s, page 2 cut at 1 s


def test_a_redirect_is_not_followed_and_the_token_stays_home(
        make_app: Callable[..., Flask], servers: Any) -> None:
    elsewhere = servers(lambda h: _send(h, 200, b'{"resourceType": "Patient", "id": "p1"}'))
    fhir = servers(lambda h: _send(h, 302, headers={"Location": f"{elsewhere.base}/Patient/p1"}))
    app = make_app(FHIR_SERVER_ALLOWLIST=[fhir.base])
    prefetch = runner_prefetch()
    del prefetch["patient"]
    call = hook_call(prefetch=prefetch, fhirServer=fhir.base, fhirAuthorization=AUTH)
    response = app.test_client().post(HOOK, json=call)
    assert fhir.requests == [("/fhir/Patient/p1", "Bearer secret-token")]
    assert elsewhere.requests == []
    assert response.status_code == 412  # the Patient stays unavailable
    assert response.get_json()["issue"][0]["expression"] == ["prefetch.patient"]


def test_a_page_over_the_size_cap_makes_the_query_unavailable(
        make_app: Callable[..., Flask], servers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefetch_module, "MAX_PAGE_BYTES", 64)
    fhir = servers(lambda h: _send(h, 200, b'{"resourceType": "Patient", "id": "p1", "x": "'
                                   + b"a" * 200 + b'"}'))
    app = make_app(FHIR_SERVER_ALLOWLIST=[fhir.base])
    prefetch = runner_prefetch()
    del prefetch["patient"]
    call = hook_call(prefetch=prefetch, fhirServer=fhir.base, fhirAuthorization=AUTH)
    response = app.test_client().post(HOOK, json=call)
    assert len(fhir.requests) == 1
    assert response.status_code == 412


def test_a_trickling_server_is_cut_by_the_whole_exchange_timeout(servers: Any) -> None:
    """Headers at once, then a byte every 0.2 s: each read is quick, the whole GET is not."""
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):
            if fhir.release.wait(0.2):
                return
            handler.wfile.write(b" ")
            handler.wfile.flush()

    fhir = servers(trickle)
    with pytest.raises(httpget.FetchError) as caught:
        httpget.get(f"{fhir.base}/Patient/p1", {}, timeout_s=0.5, max_bytes=1 << 20,
                    private_hosts=["127.0.0.1"])
    assert caught.value.reason == httpget.TIMED_OUT


def test_no_time_left_means_no_request(servers: Any) -> None:
    fhir = servers(lambda h: _send(h, 200, b"{}"))
    with pytest.raises(httpget.FetchError) as caught:
        httpget.get(f"{fhir.base}/Patient/p1", {}, timeout_s=0.0, max_bytes=1 << 20)
    assert caught.value.reason == httpget.TIMED_OUT and fhir.requests == []


def test_a_slow_name_lookup_is_cut_by_the_same_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resolver hangs for this host: the GET still ends at its timeout, as TIMED_OUT."""
    real = socket.getaddrinfo
    release = threading.Event()

    def hanging(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "slow-dns.invalid":
            release.wait(30)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    started = time.monotonic()
    try:
        with pytest.raises(httpget.FetchError) as caught:
            httpget.get("http://slow-dns.invalid/fhir/Patient/p1", {}, timeout_s=0.3,
                        max_bytes=1 << 20)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert caught.value.reason == httpget.TIMED_OUT
    assert elapsed < 20  # catches waiting out the 30 s lookup, not a speed test

