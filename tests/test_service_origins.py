"""Outbound URLs: an allowlist admits by origin and whole path segments, never by string prefix
(:mod:`service.security.origins`); the address filter refuses loopback, private, link-local and
unspecified addresses after resolving (:mod:`service.http.httpget`); and a CDS Hooks ``fhirServer``
that only looks like an allowlisted one is never called."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from flask import Flask

from service.http import httpget
from service.security import origins
from tests.local_http import QuietHandler
from tests.service_fixtures import hook_call, runner_prefetch

ALLOWED = "http://ehr.example"
FHIR = "http://ehr.example/fhir"


@pytest.mark.parametrize("url", [
    "http://ehr.example", "http://ehr.example/", "http://ehr.example/fhir/Patient/1",
    "HTTP://EHR.Example/x", "http://ehr.example:80/x",
])
def test_the_allowlisted_origin_is_admitted(url: str) -> None:
    assert origins.allowed(url, [ALLOWED]) and origins.allowed(url, [ALLOWED + "/"])


@pytest.mark.parametrize("url", [
    "http://ehr.example@evil.host", "http://ehr.example@evil.host/fhir",
    "http://user:pw@ehr.example/fhir",  # user information, even for the right host
    "http://ehr.example.evil.host", "http://ehr.example.evil.host/fhir",
    "http://ehr.example:81", "http://ehr.example:81/fhir",
    "https://ehr.example", "http://ehr.examplex", "http://evil.host/http://ehr.example",
    "http://ehr.example\\@evil.host", "http://ehr.example:8o/", "ftp://ehr.example/",
    "http://ehr.example/fhir/../admin", "http://ehr.example/fhir/%2e%2e/admin",
    "http://ehr.exa mple/", "http://ehr.example/\nx", "", "ehr.example",
])
def test_look_alike_urls_are_refused(url: str) -> None:
    assert not origins.allowed(url, [ALLOWED])
    assert not origins.allowed(url, [ALLOWED + "/"])


@pytest.mark.parametrize("url,admitted", [
    ("http://ehr.example/fhir", True), ("http://ehr.example/fhir/", True),
    ("http://ehr.example/fhir/Patient", True), ("http://ehr.example/fhirX", False),
    ("http://ehr.example/fhirX/Patient", False), ("http://ehr.example/", False),
    ("http://ehr.example/other/fhir", False),
])
def test_a_base_path_admits_whole_segments_under_it(url: str, admitted: bool) -> None:
    assert origins.allowed(url, [FHIR]) is admitted
    assert origins.allowed(url, [FHIR + "/"]) is admitted


def test_internationalised_host_names_compare_in_their_ascii_form() -> None:
    assert origins.allowed("http://xn--bcher-kva.example/fhir", ["http://bücher.example"])
    assert origins.allowed("http://BÜCHER.example/fhir", ["http://xn--bcher-kva.example"])


def test_same_origin_compares_scheme_host_and_effective_port() -> None:
    assert origins.same_origin("https://ehr.example/auth", "https://ehr.example:443/fhir")
    assert not origins.same_origin("https://ehr.example.evil.host/auth", "https://ehr.example")
    assert not origins.same_origin("https://ehr.example@evil.host/auth", "https://ehr.example")
    assert not origins.same_origin("http://ehr.example/auth", "https://ehr.example")


# ------------------------------------------------------------------------- the address filter


class _Answer(QuietHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_body(b"{}")


@pytest.fixture
def loopback() -> Iterator[int]:
    """A server on 127.0.0.1 that would answer: only the filter keeps a request from it."""
    _Answer.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0", "0.0.0.0",
                                  "localhost", "[::1]", "[::ffff:127.0.0.1]"])
def test_loopback_in_any_spelling_is_refused(loopback: int, host: str) -> None:
    with pytest.raises(httpget.FetchError) as caught:
        httpget.get(f"http://{host}:{loopback}/x", {}, 2.0, 1024)
    assert caught.value.reason == httpget.PRIVATE_ADDRESS


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.1", "192.168.1.1",
                                     "172.16.0.1", "fe80::1", "fc00::1", "224.0.0.1", "::"])
def test_private_link_local_and_special_addresses_are_not_public(address: str) -> None:
    assert not httpget.public_address(address)


def test_public_addresses_pass_the_filter() -> None:
    assert httpget.public_address("93.184.216.34") and httpget.public_address("2606:4700::1")


def test_the_metadata_address_is_refused_before_connecting(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    connects: list[Any] = []

    def connect(*args: Any, **kwargs: Any) -> Any:
        connects.append(args)
        raise OSError("no connection in this test")

    monkeypatch.setattr(socket, "create_connection", connect)
    with pytest.raises(httpget.FetchError) as caught:
        httpget.get("http://169.254.169.254/latest/meta-data/", {}, 2.0, 1024)
    assert caught.value.reason == httpget.PRIVATE_ADDRESS and connects == []


def test_an_allowlisted_private_host_is_reached_as_written_only(loopback: int) -> None:
    fetched = httpget.get(f"http://127.0.0.1:{loopback}/x", {}, 2.0, 1024,
                          private_hosts=["127.0.0.1"])
    assert fetched.status == 200
    with pytest.raises(httpget.FetchError):  # the same address spelled otherwise is not allowed
        httpget.get(f"http://127.1:{loopback}/x", {}, 2.0, 1024, private_hosts=["127.0.0.1"])


def test_a_url_with_user_information_is_refused(loopback: int) -> None:
    with pytest.raises(httpget.FetchError) as caught:
        httpget.get(f"http://user@127.0.0.1:{loopback}/x", {}, 2.0, 1024,
                    private_hosts=["127.0.0.1"])
    assert caught.value.reason == httpget.NOT_HTTP


def test_the_service_refuses_a_private_fhir_server_unless_configured(
        make_app: Callable[..., Flask], loopback: int) -> None:
    """The test apps allow 127.0.0.1 (``OUTBOUND_PRIVATE_HOSTS``); without it a loopback
    ``fhirServer``, though allowlisted, is not called."""
    server = f"http://127.0.0.1:{loopback}/fhir"
    app = make_app(FHIR_SERVER_ALLOWLIST=[server], OUTBOUND_PRIVATE_HOSTS=[])
    response = app.test_client().post("/cds-services/gmed-driver",
                                      json=_with_access(server, without_patient=True))
    assert response.status_code == 412 and _Answer.seen == []
    allowed = make_app(FHIR_SERVER_ALLOWLIST=[server])  # the test apps' ["127.0.0.1"]
    allowed.test_client().post("/cds-services/gmed-driver",
                               json=_with_access(server, without_patient=True))
    assert _Answer.seen == ["/fhir/Patient/p1"]


# --------------------------------------------------------- a look-alike fhirServer (#18.1)


def _with_access(server: str, *, without_patient: bool) -> dict[str, Any]:
    prefetch = runner_prefetch()
    if without_patient:
        prefetch.pop("patient")
    return hook_call(prefetch=prefetch, fhirServer=server, fhirAuthorization={
        "access_token": "the-ehrs-bearer-token", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "gmed-cds"})




LOOK_ALIKES = [  # (fhirServer, allowlist entry): the entry without a path is the red team's
    *[(server, ALLOWED) for server in (
        "http://ehr.example@evil.host/fhir", "http://ehr.example.evil.host/fhir",
        "http://ehr.example:81/fhir", "http://ehr.example:81")],
    *[(server, entry) for entry in (FHIR, FHIR + "/") for server in (
        "http://ehr.example/fhir@evil.host/fhir", "http://ehr.example/fhir.evil.host",
        "http://ehr.example:81/fhir", "http://ehr.example/fhirX")],
]


@pytest.mark.parametrize("server,entry", LOOK_ALIKES)
def test_a_look_alike_fhir_server_never_gets_the_bearer_token(
        make_app: Callable[..., Flask], outbound: list[str], server: str, entry: str) -> None:
    app = make_app(FHIR_SERVER_ALLOWLIST=[entry])
    response = app.test_client().post("/cds-services/gmed-driver",
                                      json=_with_access(server, without_patient=True))
    assert response.status_code == 412 and outbound == []


@pytest.mark.parametrize("server,entry", [(FHIR, FHIR + "/"), (FHIR + "/", FHIR), (FHIR, FHIR),
                                          (FHIR, ALLOWED), (FHIR, ALLOWED + "/")])
def test_the_allowlisted_fhir_server_is_called_with_or_without_a_trailing_slash(
        make_app: Callable[..., Flask], outbound: list[str], server: str, entry: str) -> None:
    app = make_app(FHIR_SERVER_ALLOWLIST=[entry])
    app.test_client().post("/cds-services/gmed-driver",
                           json=_with_access(server, without_patient=True))
    assert outbound == ["http://ehr.example/fhir/Patient/p1"]


class _Paging(QuietHandler):
    """A FHIR server whose first page links its ``next`` page off the server (a look-alike)."""

    next_url = ""
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        page = {"resourceType": "Bundle", "type": "searchset",
                "link": [{"relation": "next", "url": self.next_url}],
                "entry": [{"resource": runner_prefetch()["patient"]}]}
        self.send_body(json.dumps(page).encode())


def test_a_next_page_off_the_server_is_not_followed(make_app: Callable[..., Flask],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Paging)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    _Paging.seen = []
    _Paging.next_url = f"http://127.0.0.1:{server.server_address[1]}/fhirX/Patient?page=2"
    try:
        app = make_app(FHIR_SERVER_ALLOWLIST=[base])
        response = app.test_client().post("/cds-services/gmed-driver",
                                          json=_with_access(base, without_patient=True))
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    assert _Paging.seen == ["/fhir/Patient/p1"]  # the /fhirX page was never asked for
