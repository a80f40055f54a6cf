"""Store faults mid-run: the client is told the truth, and the service recovers on its own.

Locked (another writer holds SQLite's lock past the busy timeout), full (SQLite's "database or
disk is full", forced with ``max_page_count``), removed (the file deleted under a running
service) and unreachable (its directory gone, then back). A 503 means nothing was stored; a 201
means the assessment is in the database file at the configured path.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.store import get_store
from tests.service_fixtures import hook_call, runner_prefetch


def _ids_in(path: Path) -> set[str]:
    """Assessment ids in the database file at ``path``, read by a fresh connection."""
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM assessments")}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store" / "gmed.sqlite3"


@pytest.fixture
def faulty_app(make_app: Callable[..., Flask], db: Path) -> Flask:
    db.parent.mkdir()
    return make_app(DATABASE_URL=f"sqlite:///{db}", STORE_BUSY_TIMEOUT=0.2,
                    ENVIRONMENT="development")


@pytest.fixture
def client(faulty_app: Flask) -> FlaskClient:
    return faulty_app.test_client()


@pytest.fixture
def lock_holder(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db, isolation_level=None, timeout=0)
    yield conn
    conn.close()


def _assess(client: FlaskClient, record: dict[str, Any]) -> Any:
    return client.post("/v1/assessments", json=record)


def test_a_locked_database_is_a_503_and_nothing_is_stored(
        client: FlaskClient, runner_pfp: dict[str, Any], db: Path,
        lock_holder: sqlite3.Connection) -> None:
    first = _assess(client, runner_pfp)
    assert first.status_code == 201
    lock_holder.execute("BEGIN EXCLUSIVE")  # another process's long write
    refused = _assess(client, runner_pfp)
    assert refused.status_code == 503
    assert refused.get_json()["error"]["code"] == "store-unavailable"
    hook = client.post("/cds-services/gmed-driver", json=hook_call(prefetch=runner_prefetch()))
    assert hook.status_code == 503
    assert hook.get_json()["resourceType"] == "OperationOutcome"
    lock_holder.execute("ROLLBACK")
    again = _assess(client, runner_pfp)
    assert again.status_code == 201
    assert _ids_in(db) == {first.get_json()["id"], again.get_json()["id"]}


def test_a_full_database_is_a_503_and_nothing_is_half_written(
        client: FlaskClient, faulty_app: Flask, runner_pfp: dict[str, Any], db: Path) -> None:
    first = _assess(client, runner_pfp)
    with faulty_app.app_context():
        store = get_store()
    assert store._driver is not None  # type: ignore[attr-defined]
    writer = store._driver.connection()  # type: ignore[attr-defined]  # what the store writes on
    pages = writer.execute("PRAGMA page_count").fetchone()[0]
    writer.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL on the next page
    full = [_assess(client, runner_pfp) for _ in range(3)]
    assert [r.status_code for r in full] == [503, 503, 503]
    assert store._driver.connection() is writer  # type: ignore[attr-defined]  # still the one
    writer.execute(f"PRAGMA max_page_count = {2 ** 31}")  # the disk has room again
    again = _assess(client, runner_pfp)
    assert again.status_code == 201
    assert _ids_in(db) == {first.get_json()["id"], again.get_json()["id"]}
    with sqlite3.connect(db) as conn:  # no audit line for the refused ones either
        assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == 2


def test_a_removed_database_file_is_reopened_not_written_into_the_void(
        client: FlaskClient, runner_pfp: dict[str, Any], db: Path) -> None:
    assert _assess(client, runner_pfp).status_code == 201
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    after = _assess(client, runner_pfp)
    assert after.status_code == 201
    aid = after.get_json()["id"]
    assert _ids_in(db) == {aid}  # in the file at the configured path, not a deleted inode
    assert client.get(f"/v1/assessments/{aid}").status_code == 200


def test_an_unreachable_database_is_a_503_until_it_returns(
        client: FlaskClient, runner_pfp: dict[str, Any], db: Path) -> None:
    first = _assess(client, runner_pfp)
    away = db.parent.with_name("away")
    shutil.move(db.parent, away)  # the volume is gone
    gone = _assess(client, runner_pfp)
    assert gone.status_code == 503
    shutil.move(away, db.parent)  # and back
    again = _assess(client, runner_pfp)
    assert again.status_code == 201
    assert _ids_in(db) == {first.get_json()["id"], again.get_json()["id"]}


def test_a_request_past_its_deadline_stores_nothing_and_says_so(
        make_app: Callable[..., Flask], tmp_path: Path, runner_pfp: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is the last stage: a request whose deadline passed on the way (a slow model
    here) is answered 503 with Retry-After, and its assessment is not written."""
    import time

    import service.serving.assessing

    db = tmp_path / "deadline.sqlite3"
    app = make_app(DATABASE_URL=f"sqlite:///{db}", REQUEST_DEADLINE=0.2,
                   ENVIRONMENT="development")
    client = app.test_client()
    assert _assess(client, runner_pfp).status_code == 201
    real = service.serving.assessing.cds.assess

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(service.serving.assessing.cds, "assess", slow)
    late = _assess(client, runner_pfp)
    assert late.status_code == 503 and "Retry-After" in late.headers
    assert late.get_json()["error"]["code"] == "deadline-exceeded"
    assert len(_ids_in(db)) == 1
