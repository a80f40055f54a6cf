"""The store on PostgreSQL (``DATABASE_URL=postgresql+psycopg://...``): the same writes, reads,
group commit, replay refusal and service routes as on SQLite, against a real server of this
session (:mod:`tests.postgres_server`), one fresh database per test."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.http.errors import StoreUnavailable
from service.store import KeyConflict, SQLStore, assessments, audit, cards, feedback, get_store, outcomes
from tests.conftest import load_example
from tests.service_fixtures import hook_call

URL = "/cds-services/gmed-driver"
RESULT: dict[str, Any] = {"model": {"id": "gmed-driver", "version": "1"}, "action": "assess",
                          "red_flags": [], "results": [{"complaint": "pfp", "band": "low"}],
                          "note": "é ✓"}


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """A database of its own on the session's server, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[SQLStore]:
    store = SQLStore(database_url, b"secret")
    yield store
    store.engine.dispose()


def test_an_assessment_its_cards_and_audit_line_are_stored_and_read_back(store: SQLStore) -> None:
    ref = store.pseudonym("patient-1")
    aid = store.save_assessment(source="cds-hooks", inputs={"age": 30, "sex": "female"},
                                result=RESULT, patient_ref=ref, caller="ehr", hook_instance="h1",
                                card_rows=[{"uuid": str(uuid.uuid4()), "complaint": "pfp",
                                            "suggestion_uuid": None}])
    row = store.get_assessment(aid)
    assert row is not None
    assert row["result"] == RESULT and row["inputs"] == {"age": 30, "sex": "female"}
    assert row["patient_ref"] == ref and row["hook_instance"] == "h1"
    assert row["created_at"].tzinfo is not None  # timestamptz: the instant is kept
    [card] = store.rows(cards)
    assert card["assessment_id"] == aid
    [line] = store.rows(audit)
    assert (line["caller"], line["action"], line["assessment_id"]) == ("ehr", "cds-hooks", aid)
    assert line["returned"] == {"action": "assess", "red_flags": [], "results": {"pfp": "low"}}


def test_feedback_and_outcomes_are_stored(store: SQLStore) -> None:
    aid = store.save_assessment(source="api", inputs={}, result=RESULT, patient_ref=None,
                                caller="ehr", card_rows=[{"uuid": "c1", "complaint": "pfp",
                                                          "suggestion_uuid": None}])
    store.save_feedback([{"card_uuid": "c1", "outcome": "overridden",
                          "override_reason": {"reason": {"code": "x"}},
                          "outcome_timestamp": "2026-01-10T10:00:00Z"}], caller="ehr")
    oid = store.save_outcome(assessment_id=aid, complaint="pfp", hip_driver=True,
                             confirmed_on="2026-02-01", caller="ehr", patient_ref=None)
    [fb] = store.rows(feedback)
    assert fb["override_reason"] == {"reason": {"code": "x"}} and fb["accepted_suggestions"] is None
    [out] = store.rows(outcomes)
    assert out["id"] == oid and out["hip_driver"] is True
    assert [a["action"] for a in store.rows(audit)] == ["api", "feedback", "outcome"]


def test_a_replayed_token_id_is_refused(store: SQLStore) -> None:
    assert store.remember_token("jti-1", "https://ehr", expires_at=2_000_000_000, now_s=1)
    assert not store.remember_token("jti-1", "https://ehr", expires_at=2_000_000_000, now_s=2)


def test_concurrent_writes_are_all_committed_and_a_bad_one_fails_alone(store: SQLStore) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def save() -> None:
        for _ in range(10):
            aid = store.save_assessment(source="api", inputs={}, result=RESULT,
                                        patient_ref=None, caller="t")
            with lock:
                ids.append(aid)

    store.save_assessment(source="api", inputs={}, result=RESULT, patient_ref=None,
                          caller="t", aid="taken")
    threads = [threading.Thread(target=save) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pytest.raises(KeyConflict):  # a duplicate key is the caller's, as on SQLite
        store.save_assessment(source="api", inputs={}, result=RESULT, patient_ref=None,
                              caller="t", aid="taken")
    stored = {r["id"] for r in store.rows(assessments)}
    assert stored == {*ids, "taken"} and len(ids) == 80


def test_an_unreachable_server_is_a_503(postgres_url: str) -> None:
    gone = make_url(postgres_url).set(port=1).render_as_string(hide_password=False)
    store = SQLStore(gone, b"secret")
    assert not store.ping()
    with pytest.raises(StoreUnavailable):
        store.save_assessment(source="api", inputs={}, result=RESULT, patient_ref=None,
                              caller="t")


@pytest.fixture
def pg_app(make_app: Callable[..., Flask], database_url: str) -> Iterator[Flask]:
    app = make_app(DATABASE_URL=database_url)
    yield app
    with app.app_context():
        get_store().engine.dispose()


def test_the_service_runs_on_postgresql(pg_app: Flask) -> None:
    client = pg_app.test_client()
    assert client.get("/readyz").status_code == 200
    created = client.post("/v1/assessments", json=load_example("runner_pfp_hip_driven"))
    assert created.status_code == 201
    body = created.get_json()
    assert client.get(f"/v1/assessments/{body['id']}").get_json() == body
    outcome = client.post("/v1/outcomes", json={"assessment_id": body["id"], "complaint": "pfp",
                                                "hip_driver": True})
    assert outcome.status_code == 201
    [card] = client.post(URL, json=hook_call()).get_json()["cards"]
    response = client.post(f"{URL}/feedback", json={"feedback": [
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-10T10:00:00Z",
         "overrideReason": {"reason": card["overrideReasons"][0]}}]})
    assert response.status_code == 200 and response.get_json() == {"stored": 1}
    with pg_app.app_context():
        assert len(get_store().rows(assessments)) == 2
        assert [r["complaint"] for r in get_store().rows(outcomes)] == ["pfp"]
