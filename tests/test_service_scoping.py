"""What one caller stores is the business of that caller's issuer, and every key has one purpose:
an assessment is read (and its outcome recorded) only by the issuer that stored it; patient
pseudonyms are namespaced by issuer and taken of the NFC form; the session key is derived with
its own label, so no patient id can make the store hold it."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.security.keys import derive, get_keys
from service.store import assessments, audit, get_store
from tests.conftest import load_example
from tests.service_fixtures import BASE, ISSUER, Signer

OTHER = "https://other-ehr.example.org"


@pytest.fixture
def two_issuers(make_app: Callable[..., Flask], signer: Signer, tmp_path: Path
                ) -> tuple[Flask, Signer, Signer]:
    other = Signer()
    files = {}
    for name, keys in (("a", signer), ("b", other)):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(keys.jwks()))
    app = make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jwks_file": str(files["a"])},
                                            OTHER: {"jwks_file": str(files["b"])}})
    return app, signer, other


def _as(app: Flask, signer: Signer, iss: str, method: str, path: str,
        body: dict[str, Any] | None = None) -> Any:
    headers = {"Authorization": f"Bearer {signer.token(BASE + path, iss=iss)}"}
    return app.test_client().open(path, method=method, json=body, headers=headers)


def _record(patient_id: str) -> dict[str, Any]:
    return {**load_example("runner_pfp_hip_driven"), "patient_id": patient_id}


def test_another_issuer_gets_404_for_an_assessment_id(
        two_issuers: tuple[Flask, Signer, Signer]) -> None:
    app, a, b = two_issuers
    created = _as(app, a, ISSUER, "POST", "/v1/assessments", _record("p1"))
    assert created.status_code == 201
    aid = created.get_json()["id"]
    assert _as(app, a, ISSUER, "GET", f"/v1/assessments/{aid}").status_code == 200
    theirs = _as(app, b, OTHER, "GET", f"/v1/assessments/{aid}")
    assert theirs.status_code == 404 and theirs.get_json() == _as(
        app, b, OTHER, "GET", "/v1/assessments/no-such-id").get_json()  # not told it exists


def test_another_issuer_cannot_record_an_outcome_on_an_assessment(
        two_issuers: tuple[Flask, Signer, Signer]) -> None:
    app, a, b = two_issuers
    aid = _as(app, a, ISSUER, "POST", "/v1/assessments", _record("p1")).get_json()["id"]
    outcome = {"assessment_id": aid, "complaint": "pfp", "hip_driver": True}
    assert _as(app, b, OTHER, "POST", "/v1/outcomes", outcome).status_code == 404
    assert _as(app, a, ISSUER, "POST", "/v1/outcomes", outcome).status_code == 201


def test_another_issuer_cannot_send_feedback_on_a_card(
        two_issuers: tuple[Flask, Signer, Signer]) -> None:
    from service.store import cards
    from tests.service_fixtures import hook_call

    app, a, b = two_issuers
    assert _as(app, a, ISSUER, "POST", "/cds-services/gmed-driver",
               hook_call()).status_code == 200
    with app.app_context():
        [card] = get_store().rows(cards)
    path = "/cds-services/gmed-driver/feedback"
    body = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                          "outcomeTimestamp": "2026-01-10T10:00:00Z"}]}
    refused = _as(app, b, OTHER, "POST", path, body)
    assert refused.status_code == 422
    assert refused.get_json()["issue"][0]["expression"] == ["feedback[0].card"]
    assert _as(app, a, ISSUER, "POST", path, body).status_code == 200


def test_one_patient_id_from_two_issuers_gives_two_pseudonyms(
        two_issuers: tuple[Flask, Signer, Signer]) -> None:
    app, a, b = two_issuers
    for signer, iss in ((a, ISSUER), (b, OTHER)):
        assert _as(app, signer, iss, "POST", "/v1/assessments",
                   _record("mrn-1")).status_code == 201
    with app.app_context():
        rows = get_store().rows(assessments)[-2:]
        assert [r["issuer"] for r in rows] == [ISSUER, OTHER]
        assert rows[0]["patient_ref"] != rows[1]["patient_ref"]
        assert rows[0]["patient_ref"] == get_store().pseudonym("mrn-1", ISSUER)


def test_nfc_and_nfd_forms_of_a_patient_id_give_one_pseudonym(app: Flask) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "José-1"), unicodedata.normalize("NFD", "José-1")
    assert nfc != nfd
    client = app.test_client()
    for patient in (nfc, nfd):
        assert client.post("/v1/assessments", json=_record(patient)).status_code == 201
    with app.app_context():
        first, second = get_store().rows(assessments)[-2:]
    assert first["patient_ref"] == second["patient_ref"]


MAGIC = "gmed-ui-session\x00key"  # the string whose pseudonym was the session key


def test_the_old_magic_patient_id_does_not_store_the_session_key(app: Flask) -> None:
    assert app.test_client().post("/v1/assessments", json=_record(MAGIC)).status_code == 201
    with app.app_context():
        stored = {r["patient_ref"] for r in get_store().rows(audit)}
        stored |= {r["patient_ref"] for r in get_store().rows(assessments)}
    session_key = app.secret_key
    assert isinstance(session_key, bytes | str) and session_key
    as_text = session_key.hex() if isinstance(session_key, bytes) else session_key
    assert as_text not in stored and session_key not in stored


def test_each_purpose_has_its_own_key() -> None:
    keys = derive(b"0123456789abcdef0123456789abcdef")
    assert len({keys.pseudonym, keys.session, keys.csrf}) == 3
    assert b"0123456789abcdef0123456789abcdef" not in (keys.pseudonym, keys.session, keys.csrf)
    assert derive(b"another secret of 32 bytes......").session != keys.session
    assert "0123" not in repr(keys) and keys.session.hex() not in repr(keys)


def test_the_app_signs_its_session_with_the_session_key(app: Flask) -> None:
    with app.app_context():
        assert app.secret_key == get_keys().session != get_keys().pseudonym


# ---------------------------------------------------- a SMART session sees its issuer's patients


@pytest.fixture
def linked(make_app: Callable[..., Flask], signer: Signer, tmp_path: Path) -> Callable[..., Flask]:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))

    def build(fhir_servers: list[str], allowlist: list[str]) -> Flask:
        return make_app(AUTH="jwt", UI_AUTH="smart", SMART_CLIENT_ID="gmed-cds",
                        FHIR_SERVER_ALLOWLIST=allowlist,
                        JWT_ISSUERS={ISSUER: {"jwks_file": str(jwks),
                                              "fhir_servers": fhir_servers}})
    return build


def test_a_smart_launch_from_the_issuers_ehr_sees_what_that_issuer_stored(
        linked: Callable[..., Flask], signer: Signer) -> None:
    from tests.test_service_smart import FakeEhr

    ehr = FakeEhr()
    try:
        app = linked([ehr.iss], [ehr.iss])
        aid = _as(app, signer, ISSUER, "POST", "/v1/assessments", _record("p1")).get_json()["id"]
        client = app.test_client()
        response = client.get(f"/ui/assessments/{aid}", query_string={"iss": ehr.iss,
                                                                       "launch": "x"})
        granted = ehr.authorize(response.headers["Location"])
        back = client.get("/ui/smart/callback", query_string={"code": granted["code"],
                                                              "state": granted["state"]})
        assert back.status_code == 303
        assert client.get(f"/ui/assessments/{aid}").status_code == 200
    finally:
        ehr.httpd.shutdown()
        ehr.httpd.server_close()


def test_a_smart_launch_from_an_ehr_linked_to_no_issuer_is_refused(
        linked: Callable[..., Flask], signer: Signer) -> None:
    app = linked(["https://ehr.example.org/fhir"], ["http://127.0.0.1:9/fhir"])
    aid = _as(app, signer, ISSUER, "POST", "/v1/assessments", _record("p1")).get_json()["id"]
    response = app.test_client().get(f"/ui/assessments/{aid}", query_string={
        "iss": "http://127.0.0.1:9/fhir", "launch": "x"})
    assert response.status_code == 400 and "Location" not in response.headers


def test_a_store_from_before_gains_the_issuer_column(tmp_path: Path) -> None:
    """A database created before assessments had an issuer: opened, it gains the column (the
    old rows have none), and new assessments are stored and read with theirs."""
    import sqlite3

    from service.store import SQLStore

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    SQLStore(url, b"k").engine.dispose()
    with sqlite3.connect(tmp_path / "old.sqlite3") as db:
        db.execute("ALTER TABLE assessments DROP COLUMN issuer")
        assert "issuer" not in {r[1] for r in db.execute("PRAGMA table_info(assessments)")}
    store = SQLStore(url, b"k")
    result = {"model": {"id": "m", "version": "1"}, "action": "assess"}
    aid = store.save_assessment(source="api", inputs={}, result=result, patient_ref=None,
                                caller="test", issuer=ISSUER)
    row = store.get_assessment(aid)
    assert row is not None and row["issuer"] == ISSUER
