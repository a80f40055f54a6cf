"""Outbound requests: one watchdog for every deadline, and a session's kept connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from service.http import httpget
from tests.local_http import QuietHandler


class _Keeping(QuietHandler):
    """HTTP/1.1 with keep-alive; counts the connections opened (``setup`` runs once each)."""

    protocol_version = "HTTP/1.1"
    connections = 0

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_GET(self) -> None:
        self.send_body(b'{"resourceType": "Bundle"}')


@pytest.fixture
def server() -> Iterator[str]:
    _Keeping.connections = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Keeping)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/fhir"
    httpd.shutdown()
    httpd.server_close()


def test_the_requests_of_a_session_share_one_connection(server: str) -> None:
    with httpget.Session() as session:
        for page in range(3):
            fetched = httpget.get(f"{server}/Observation?page={page}", {}, 5.0, 1 << 20,
                                  private_hosts=["127.0.0.1"], session=session)
            assert fetched.status == 200
    assert _Keeping.connections == 1


def test_without_a_session_each_request_has_its_own_connection(server: str) -> None:
    for page in range(3):
        httpget.get(f"{server}/Observation?page={page}", {}, 5.0, 1 << 20,
                    private_hosts=["127.0.0.1"])
    assert _Keeping.connections == 3


def test_requests_start_no_thread_each(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadlines are kept by one watchdog thread (started once per process), and an IP
    literal needs no lookup thread (before: a timer thread per request)."""
    httpget.get(f"{server}/Patient/p1", {}, 5.0, 1 << 20, private_hosts=["127.0.0.1"])
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(5):
        httpget.get(f"{server}/Patient/p1", {}, 5.0, 1 << 20, private_hosts=["127.0.0.1"])
    monkeypatch.undo()
    # the test server's threads (one a connection) aside, none: no timer, no lookup thread
    assert [n for n in started if "process_request_thread" not in n] == []
