"""The store: group commit keeps every write, a bad unit fails alone, references are pseudonymous."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from service.errors import StoreUnavailable
from service.store import Store, assessments, audit, seen_tokens

RESULT: dict[str, Any] = {"model": {"id": "gmed-driver", "version": "1"}, "action": "assess",
                          "red_flags": [], "results": [{"complaint": "pfp", "band": "low"}]}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'db.sqlite3'}", b"secret")


def test_concurrent_writes_are_all_committed(store: Store) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def save() -> None:
        for _ in range(10):
            aid = store.save_assessment(source="api", inputs={}, result=RESULT,
                                        patient_ref=None, caller="test")
            with lock:
                ids.append(aid)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["id"] for r in store.rows(assessments)) == sorted(ids)
    assert len(store.rows(audit)) == 80


def test_replayed_token_fails_alone_in_a_batch(store: Store) -> None:
    assert store.remember_token("jti-1", "iss", 2_000_000_000, 1_000)
    outcomes: dict[str, bool] = {}

    def remember(jti: str) -> None:
        outcomes[jti] = store.remember_token(jti, "iss", 2_000_000_000, 1_000)

    threads = [threading.Thread(target=remember, args=(j,)) for j in
               ("jti-1", "jti-2", "jti-3", "jti-4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == {"jti-1": False, "jti-2": True, "jti-3": True, "jti-4": True}


def test_expired_token_ids_are_forgotten(store: Store) -> None:
    store.remember_token("old", "iss", expires_at=100, now_s=50)
    store.remember_token("new", "iss", expires_at=300, now_s=200)
    assert len(store.rows(seen_tokens)) == 1


def test_pseudonym_is_stable_and_keyed(store: Store, tmp_path: Path) -> None:
    other = Store(f"sqlite:///{tmp_path / 'other.sqlite3'}", b"another secret")
    assert store.pseudonym("p1") == store.pseudonym("p1") != other.pseudonym("p1")
    assert store.pseudonym("p1") != "p1" and len(store.pseudonym("p1") or "") == 64
    assert store.pseudonym(None) is None


def test_database_failure_is_a_503_not_a_500(tmp_path: Path) -> None:
    broken = Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite3'}", b"k")
    with pytest.raises(StoreUnavailable):
        broken.audit_event("caller", "test", None, {})


def test_a_failing_unit_does_not_lose_the_others(store: Store) -> None:
    def bad(conn: Any) -> None:
        conn.execute(insert(audit).values(at=None, action="x"))  # at is NOT NULL

    errors: list[BaseException] = []

    def run_bad() -> None:
        try:
            store.write(bad)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run_bad)] + [
        threading.Thread(target=store.audit_event, args=("c", "ok", None, {})) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1
    assert len(store.rows(audit)) == 5
