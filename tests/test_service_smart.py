"""The clinician page behind a SMART EHR launch: discovery, the authorization redirect (state,
PKCE S256), the code exchange, and an assessment shown only to a session of its patient. The
EHR's authorization server is a loopback fake that checks what a real one checks."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.security import patient_label, smart
from service.store import assessments, get_store
from tests.conftest import load_example
from tests.local_http import QuietHandler

CLIENT_ID = "gmed-cds"
CALLBACK = "http://localhost/ui/smart/callback"


class FakeEhr:
    """``/.well-known/smart-configuration`` and a token endpoint that accepts one code, once,
    with the PKCE verifier of the challenge it was issued for."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}  # code -> code_challenge
        self.token_answer: dict[str, Any] = {"access_token": "at-secret", "token_type": "Bearer",
                                             "expires_in": 3600, "patient": "p1",
                                             "fhirUser": "Practitioner/dr-1", "scope": "launch"}
        self.token_status = 200
        self.callback = CALLBACK  # the redirect_uri this client registered
        self.requests: list[str] = []
        ehr = self

        class Handler(QuietHandler):
            def _send(self, status: int, body: dict[str, Any]) -> None:
                self.send_body(json.dumps(body).encode(), status=status,
                               content_type="application/json")

            def do_GET(self) -> None:
                ehr.requests.append(f"GET {self.path}")
                if self.path == "/fhir/.well-known/smart-configuration":
                    self._send(200, {"authorization_endpoint": f"{ehr.base}/auth/authorize",
                                     "token_endpoint": f"{ehr.base}/auth/token",
                                     "code_challenge_methods_supported": ["S256"]})
                elif self.path.startswith("/auth/authorize?"):  # the clinician approves at once
                    granted = ehr.authorize(f"{ehr.base}{self.path}")
                    query = urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)
                    back = dict(query)["redirect_uri"]
                    self.send_response(302)
                    self.send_header("Location", f"{back}?" + urllib.parse.urlencode(
                        {"code": granted["code"], "state": granted["state"]}))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._send(404, {})

            def do_POST(self) -> None:
                ehr.requests.append(f"POST {self.path}")
                form = dict(urllib.parse.parse_qsl(self.rfile.read(
                    int(self.headers["Content-Length"])).decode()))
                challenge = ehr.codes.pop(form.get("code", ""), None)
                verified = challenge is not None and base64.urlsafe_b64encode(hashlib.sha256(
                    form.get("code_verifier", "").encode()).digest()).decode().rstrip("=") \
                    == challenge
                if not (verified and form.get("grant_type") == "authorization_code"
                        and form.get("client_id") == CLIENT_ID
                        and form.get("redirect_uri") == ehr.callback):
                    self._send(400, {"error": "invalid_grant"})
                    return
                self._send(ehr.token_status, ehr.token_answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.iss = f"{self.base}/fhir"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def authorize(self, location: str) -> dict[str, str]:
        """What the EHR does at its authorization endpoint: check, and issue a code."""
        url = urllib.parse.urlsplit(location)
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{self.base}/auth/authorize"
        query = dict(urllib.parse.parse_qsl(url.query))
        self.codes[f"code-{len(self.codes)}"] = query["code_challenge"]
        return {"code": f"code-{len(self.codes) - 1}", "state": query["state"], **{
            k: query[k] for k in query if k != "state"}}


@pytest.fixture
def ehr() -> Iterator[FakeEhr]:
    fake = FakeEhr()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


@pytest.fixture
def smart_app(make_app: Callable[..., Flask], ehr: FakeEhr) -> Flask:
    return make_app(UI_AUTH="smart", SMART_CLIENT_ID=CLIENT_ID, FHIR_SERVER_ALLOWLIST=[ehr.iss])


def _assessment(client: FlaskClient, patient_id: str) -> str:
    record = {**load_example("runner_pfp_hip_driven"), "patient_id": patient_id}
    response = client.post("/v1/assessments", json=record)
    assert response.status_code == 201
    aid: str = response.get_json()["id"]
    return aid


def _launch(client: FlaskClient, ehr: FakeEhr, path: str,
            base_url: str = "http://localhost") -> dict[str, str]:
    """Open ``path`` as the EHR does; return the authorization request's parameters."""
    response = client.get(path, query_string={"iss": ehr.iss, "launch": "xyz"},
                          base_url=base_url)
    assert response.status_code == 302
    return ehr.authorize(response.headers["Location"])


def _sign_in(client: FlaskClient, ehr: FakeEhr, path: str,
             base_url: str = "http://localhost") -> Any:
    granted = _launch(client, ehr, path, base_url)
    return client.get("/ui/smart/callback", query_string={"code": granted["code"],
                                                          "state": granted["state"]},
                      base_url=base_url)


def test_without_a_launch_patient_pages_are_401_and_the_model_facts_are_open(
        smart_app: Flask) -> None:
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    for path in (f"/ui/assessments/{aid}", f"/ui/assessments/{aid}/edit", "/ui/"):
        assert client.get(path).status_code == 401, path
    assert client.get("/ui/model").status_code == 200


def test_the_launch_asks_the_ehr_for_a_code_with_state_and_pkce(smart_app: Flask,
                                                                ehr: FakeEhr) -> None:
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    granted = _launch(client, ehr, f"/ui/assessments/{aid}")
    assert granted["response_type"] == "code" and granted["client_id"] == CLIENT_ID
    assert granted["redirect_uri"] == CALLBACK and granted["launch"] == "xyz"
    assert granted["aud"] == ehr.iss and granted["code_challenge_method"] == "S256"
    assert "launch" in granted["scope"].split() and len(granted["code_challenge"]) == 43
    assert ehr.requests == ["GET /fhir/.well-known/smart-configuration"]


def test_a_signed_in_clinician_sees_the_patients_assessment_and_not_anothers(
        smart_app: Flask, ehr: FakeEhr) -> None:
    client = smart_app.test_client()
    mine, other = _assessment(client, "p1"), _assessment(client, "p2")
    back = _sign_in(client, ehr, f"/ui/assessments/{mine}")
    assert back.status_code == 303 and back.headers["Location"] == f"/ui/assessments/{mine}"
    page = client.get(f"/ui/assessments/{mine}")
    assert page.status_code == 200 and b"Hip driver" in page.data
    assert client.get(f"/ui/assessments/{other}").status_code == 403
    assert client.get(f"/ui/assessments/{other}/edit").status_code == 403
    assert client.get("/ui/").status_code == 200


@pytest.mark.parametrize("scheme,same_site", [("https", "None"), ("http", "Lax")])
def test_the_session_cookie_holds_a_pseudonym_never_the_token_or_the_patient_id(
        smart_app: Flask, ehr: FakeEhr, scheme: str, same_site: str) -> None:
    """Over HTTPS the cookie can reach a page framed by the EHR (SameSite=None, Secure)."""
    client = smart_app.test_client()
    ehr.callback = f"{scheme}://localhost/ui/smart/callback"
    aid = _assessment(client, "p1")
    assert _sign_in(client, ehr, f"/ui/assessments/{aid}",
                    f"{scheme}://localhost").status_code == 303
    cookie = client.get_cookie("gmed_ui_session", path="/ui/")
    assert cookie is not None and cookie.http_only and cookie.same_site == same_site
    assert cookie.secure == (scheme == "https")
    serializer = smart_app.session_interface.get_signing_serializer(  # type: ignore[attr-defined]
        smart_app)
    stored = serializer.loads(cookie.value)
    # the patient reference shown on the pages is kept encrypted (service.security.patient_label)
    assert set(stored) == {"smart", patient_label.SESSION_KEY}
    assert set(stored["smart"]) == {"patient_ref", "issuer", "sid", "user", "expires"}
    assert '"p1"' not in json.dumps(stored)
    with smart_app.app_context():
        assert stored["smart"]["patient_ref"] == get_store().pseudonym("p1") != "p1"
    assert "at-secret" not in json.dumps(stored)


@pytest.mark.parametrize("tamper", ["state", "replay", "declined"])
def test_a_callback_that_was_not_started_here_or_declined_signs_nobody_in(
        smart_app: Flask, ehr: FakeEhr, tamper: str) -> None:
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    granted = _launch(client, ehr, f"/ui/assessments/{aid}")
    query = {"code": granted["code"], "state": granted["state"]}
    if tamper == "state":
        query["state"] = "forged"
    elif tamper == "replay":  # the completed callback's URL, replayed in another browser
        assert client.get("/ui/smart/callback", query_string=query).status_code == 303
        client = smart_app.test_client()
    else:
        query = {"error": "access_denied", "state": granted["state"]}
    refused = client.get("/ui/smart/callback", query_string=query)
    assert refused.status_code in (400, 403)
    assert client.get(f"/ui/assessments/{aid}").status_code == 401


def test_an_ehr_that_is_not_allowlisted_is_refused_without_contacting_it(
        make_app: Callable[..., Flask], ehr: FakeEhr) -> None:
    app = make_app(UI_AUTH="smart", SMART_CLIENT_ID=CLIENT_ID,
                   FHIR_SERVER_ALLOWLIST=["https://ehr.example.org/"])
    client = app.test_client()
    aid = _assessment(client, "p1")
    response = client.get(f"/ui/assessments/{aid}", query_string={"iss": ehr.iss,
                                                                   "launch": "x"})
    assert response.status_code == 400 and ehr.requests == []


@pytest.mark.parametrize("answer,status", [
    ({"access_token": "t", "token_type": "Bearer"}, 403),  # no patient in context
    ({"error": "server_error"}, 502),
])
def test_a_token_without_a_patient_or_an_error_signs_nobody_in(
        smart_app: Flask, ehr: FakeEhr, answer: dict[str, Any], status: int) -> None:
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    ehr.token_answer = answer
    ehr.token_status = 200 if status == 403 else 500
    assert _sign_in(client, ehr, f"/ui/assessments/{aid}").status_code == status
    assert client.get(f"/ui/assessments/{aid}").status_code == 401


def test_the_session_ends_with_the_token(smart_app: Flask, ehr: FakeEhr) -> None:
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    ehr.token_answer["expires_in"] = 1
    assert _sign_in(client, ehr, f"/ui/assessments/{aid}").status_code == 303
    assert client.get(f"/ui/assessments/{aid}").status_code == 200
    time.sleep(1.1)
    assert client.get(f"/ui/assessments/{aid}").status_code == 401


def test_the_form_stores_under_the_launchs_patient(smart_app: Flask, ehr: FakeEhr) -> None:
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    _sign_in(client, ehr, f"/ui/assessments/{aid}")
    form = client.get("/ui/")
    token = form.data.split(b'name="csrf_token" value="')[1].split(b'"')[0].decode()
    created = client.post("/ui/assessments", data={
        "csrf_token": token, "complaints": "pfp", "age_years": "30", "sex": "female"})
    assert created.status_code == 303
    new_id = created.headers["Location"].rsplit("/", 1)[1]
    assert client.get(f"/ui/assessments/{new_id}").status_code == 200
    with smart_app.app_context():
        row = next(r for r in get_store().rows(assessments) if r["id"] == new_id)
        assert row["patient_ref"] == get_store().pseudonym("p1")


# ------------------------------------------------ the allowlist by origin (#18.1), pinned refusals




LOOK_ALIKES = [  # (iss, allowlist entry): the entry without a path is the red team's case
    *[(iss, "http://ehr.example") for iss in (
        "http://ehr.example@evil.host", "http://ehr.example@evil.host/fhir",
        "http://ehr.example.evil.host", "http://ehr.example.evil.host/fhir",
        "http://ehr.example:81", "http://ehr.example:81/fhir")],
    *[(iss, entry) for entry in ("http://ehr.example/fhir", "http://ehr.example/fhir/")
      for iss in ("http://ehr.example/fhir@evil.host/fhir", "http://ehr.example/fhir.evil.host",
                  "http://ehr.example:81/fhir", "http://ehr.example/fhirX")],
]


@pytest.mark.parametrize("iss,entry", LOOK_ALIKES)
def test_a_look_alike_iss_is_refused_without_contacting_it(
        make_app: Callable[..., Flask], outbound: list[str], iss: str, entry: str) -> None:
    """Sign-in as any patient through an attacker's "EHR", and the open redirect: refused."""
    app = make_app(UI_AUTH="smart", SMART_CLIENT_ID=CLIENT_ID, FHIR_SERVER_ALLOWLIST=[entry])
    client = app.test_client()
    aid = _assessment(client, "p1")
    response = client.get(f"/ui/assessments/{aid}", query_string={"iss": iss, "launch": "x"})
    assert response.status_code == 400 and "Location" not in response.headers
    assert outbound == []


@pytest.mark.parametrize("iss,entry", [
    ("http://ehr.example/fhir", "http://ehr.example/fhir/"),
    ("http://ehr.example/fhir/", "http://ehr.example/fhir"),
    ("http://ehr.example/fhir", "http://ehr.example"),
    ("http://ehr.example/fhir", "http://ehr.example/"),
])
def test_the_allowlisted_iss_is_accepted_with_or_without_a_trailing_slash(
        make_app: Callable[..., Flask], outbound: list[str], iss: str, entry: str) -> None:
    app = make_app(UI_AUTH="smart", SMART_CLIENT_ID=CLIENT_ID, FHIR_SERVER_ALLOWLIST=[entry])
    client = app.test_client()
    aid = _assessment(client, "p1")
    client.get(f"/ui/assessments/{aid}", query_string={"iss": iss, "launch": "x"})
    assert outbound == ["http://ehr.example/fhir/.well-known/smart-configuration"]


def _discovery(ehr: FakeEhr, **changes: Any) -> None:
    """Make the fake EHR's discovery document say something else."""
    document = {"authorization_endpoint": f"{ehr.base}/auth/authorize",
                "token_endpoint": f"{ehr.base}/auth/token",
                "code_challenge_methods_supported": ["S256"], **changes}
    document = {k: v for k, v in document.items() if v is not None}
    handler = ehr.httpd.RequestHandlerClass
    original = handler.do_GET  # type: ignore[attr-defined]

    def do_get(self: Any) -> None:
        if self.path == "/fhir/.well-known/smart-configuration":
            ehr.requests.append(f"GET {self.path}")
            self._send(200, document)
        else:
            original(self)

    handler.do_GET = do_get  # type: ignore[attr-defined]


@pytest.mark.parametrize("endpoint", ["authorization_endpoint", "token_endpoint"])
@pytest.mark.parametrize("elsewhere", [
    "http://evil.example/authorize", "http://127.0.0.1:1/authorize",
    "{base}@evil.example/authorize", "https://{host}/authorize",
])
def test_endpoints_off_the_iss_origin_are_refused(smart_app: Flask, ehr: FakeEhr, endpoint: str,
                                                  elsewhere: str) -> None:
    """The open redirect (authorize) and the token POST to any host (token): refused."""
    _discovery(ehr, **{endpoint: elsewhere.format(base=ehr.base,
                                                  host=ehr.base.split("//")[1])})
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    response = client.get(f"/ui/assessments/{aid}", query_string={"iss": ehr.iss, "launch": "x"})
    assert response.status_code == 502 and "Location" not in response.headers


@pytest.mark.parametrize("methods", [None, ["plain"], [], "S256"])
def test_an_ehr_without_pkce_s256_is_refused(smart_app: Flask, ehr: FakeEhr,
                                             methods: Any) -> None:
    """No ``code_challenge_methods_supported`` (None), or one without S256: no redirect."""
    _discovery(ehr, code_challenge_methods_supported=methods)
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    response = client.get(f"/ui/assessments/{aid}", query_string={"iss": ehr.iss, "launch": "x"})
    assert response.status_code == 502 and "Location" not in response.headers


@pytest.mark.parametrize("age,signed_in", [(smart.PENDING_SECONDS + 5, False),
                                           (smart.PENDING_SECONDS - 5, True)])
def test_a_launch_older_than_its_limit_signs_nobody_in(
        smart_app: Flask, ehr: FakeEhr, monkeypatch: pytest.MonkeyPatch, age: float,
        signed_in: bool) -> None:
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    granted = _launch(client, ehr, f"/ui/assessments/{aid}")
    later = time.time() + age
    monkeypatch.setattr(smart, "time", type("Clock", (), {"time": staticmethod(lambda: later)}))
    back = client.get("/ui/smart/callback", query_string={"code": granted["code"],
                                                          "state": granted["state"]})
    assert back.status_code == (303 if signed_in else 400)
    assert ehr.requests[-1].startswith("POST") is signed_in  # no code exchange when refused


def test_a_wrong_state_is_refused_and_the_code_is_not_exchanged(smart_app: Flask,
                                                                  ehr: FakeEhr) -> None:
    client = smart_app.test_client()
    aid = _assessment(client, "p1")
    granted = _launch(client, ehr, f"/ui/assessments/{aid}")
    refused = client.get("/ui/smart/callback", query_string={"code": granted["code"],
                                                             "state": granted["state"] + "x"})
    assert refused.status_code == 400 and not any(r.startswith("POST") for r in ehr.requests)


# --------------------------------------------------------- CSRF bound to the session (#18.15)


def _form_token(client: FlaskClient) -> str:
    form = client.get("/ui/")
    assert form.status_code == 200
    token: str = form.data.split(b'name="csrf_token" value="')[1].split(b'"')[0].decode()
    return token


def _post_form(client: FlaskClient, token: str) -> Any:
    return client.post("/ui/assessments", data={"csrf_token": token, "complaints": "pfp",
                                                 "age_years": "30", "sex": "female"})


def test_the_form_needs_its_cookie_and_its_sessions_token(smart_app: Flask,
                                                          ehr: FakeEhr) -> None:
    """Two clinicians (browsers A and B) signed in for the same patient: A's CSRF cookie and
    token, carried into B's browser, are refused there; so is a token without its cookie or with
    another cookie; A's own pair, with the real cookie, is accepted."""
    from service.ui.pages import CSRF_COOKIE

    a, b = smart_app.test_client(), smart_app.test_client()
    aid = _assessment(a, "p1")
    for client in (a, b):
        assert _sign_in(client, ehr, f"/ui/assessments/{aid}").status_code == 303
    token_a = _form_token(a)
    cookie_a = a.get_cookie(CSRF_COOKIE, path="/ui/")
    assert cookie_a is not None
    _form_token(b)  # B has its own cookie, replaced below by A's
    b.set_cookie(CSRF_COOKIE, cookie_a.value, path="/ui/")
    assert _post_form(b, token_a).status_code == 400  # another session
    a.delete_cookie(CSRF_COOKIE, path="/ui/")
    assert _post_form(a, token_a).status_code == 400  # no cookie
    a.set_cookie(CSRF_COOKIE, "x" * 43, path="/ui/")
    assert _post_form(a, token_a).status_code == 400  # another cookie
    a.set_cookie(CSRF_COOKIE, cookie_a.value, path="/ui/")
    assert _post_form(a, token_a).status_code == 303  # its own cookie and token


# ------------------------------------------------ hook instances of another patient (#18.13)


def test_a_hook_instance_of_another_patient_reveals_nothing(smart_app: Flask,
                                                            ehr: FakeEhr) -> None:
    from tests.service_fixtures import hook_call

    client = smart_app.test_client()
    mine = _assessment(client, "p1")
    theirs = hook_call()
    theirs["context"]["patientId"] = "p2"
    theirs["prefetch"]["patient"]["id"] = "p2"
    for bundle in ("observations", "conditions", "intake"):
        for entry in theirs["prefetch"][bundle]["entry"]:
            entry["resource"]["subject"] = {"reference": "Patient/p2"}
    assert client.post("/cds-services/gmed-driver", json=theirs).status_code == 200
    with smart_app.app_context():
        their_id = next(r["id"] for r in get_store().rows(assessments)
                        if r["hook_instance"] == theirs["hookInstance"])
    _sign_in(client, ehr, f"/ui/assessments/{mine}")  # signed in for p1
    response = client.get(f"/ui/hook-instances/{theirs['hookInstance']}")
    assert response.status_code == 404
    assert their_id not in response.headers.get("Location", "")
    assert their_id.encode() not in response.data
