"""The SQLite writer (:mod:`service.store.sqlite_writer`): the store's writes on one driver
connection per process store what SQLAlchemy stored, a failed batch is retried unit by unit, a
connection never crosses a fork, and its commits are ``synchronous=FULL``."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds.store_schema import TABLES
from service.store import KeyConflict, SQLStore, records
from service.store import interface as store_interface
from service.store.commit import Batch
from service.store.sqlite_writer import _INHERITED, INSERTS

RESULT: dict[str, Any] = {"model": {"id": "gmed-driver", "version": "1"}, "action": "assess",
                          "red_flags": [{"feature": "night_pain"}],
                          "results": [{"complaint": "pfp", "band": "low"}]}
AT = datetime(2026, 12, 3, 15, 4, 5, 60708, tzinfo=UTC)
FULL, NORMAL = 2, 1


def _every_write(store: SQLStore) -> None:
    """One of each write the service makes, in the order it makes them."""
    first = store.save_assessment(
        source="cds-hooks", inputs={"age": 41, "notes": "é"}, result=RESULT, patient_ref="p-1",
        caller="ehr", hook_instance="h-1", issuer="https://ehr",
        card_rows=[{"uuid": "card-1", "complaint": "pfp", "suggestion_uuid": "s-1"}])
    store.save_assessment_from(first, source="api", inputs={"age": 41}, result=RESULT,
                               patient_ref="p-1", caller="ehr", returned={"kept": True})
    store.save_feedback([{"card_uuid": "card-1", "outcome": "overridden",
                          "accepted_suggestions": None, "override_reason": {"code": "x"},
                          "outcome_timestamp": "2026-12-03T15:00:00Z"}], "ehr")
    store.save_outcome(assessment_id=first, complaint="pfp", hip_driver=True,
                       confirmed_on="2026-12-01", caller="ehr", patient_ref="p-1")
    store.audit_event("ehr", "no-cards", None, None, model_version="1")
    store.remember_token("jti-1", "iss", 2_000_000_000, 1_000)
    store.write(store.shadow_work(first, "shadow", "2", [{"complaint": "pfp",
                                                          "probability": 0.25}]))


def _stored(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table as SQLite holds it (the text of JSON and datetimes), read by a fresh
    connection."""
    with sqlite3.connect(database) as conn:
        return {name: conn.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall()
                for name in TABLES}


def test_both_write_paths_store_the_same_rows(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "now", lambda: AT)
    monkeypatch.setattr(store_interface, "now", lambda: AT)
    stored = {}
    for way, driver_writes in (("sqlalchemy", False), ("driver", True)):
        ids = (uuid.UUID(int=i) for i in itertools.count(1))
        monkeypatch.setattr(records.uuid, "uuid4", lambda ids=ids: next(ids))
        store = SQLStore(f"sqlite:///{tmp_path / way}.sqlite3", b"s",
                         driver_writes=driver_writes)
        assert (store._driver is not None) == driver_writes
        _every_write(store)
        stored[way] = _stored(tmp_path / f"{way}.sqlite3")
    assert all(stored["driver"].values())  # every table has rows
    assert stored["driver"] == stored["sqlalchemy"]


def test_a_failed_batch_is_retried_one_unit_at_a_time(tmp_path: Path) -> None:
    """Units queued behind another worker's commit go in one batch; one of them repeats an id,
    so the batch fails and each unit is retried in its own transaction: only that one fails."""
    import fcntl

    store = SQLStore(f"sqlite:///{tmp_path / 'db.sqlite3'}", b"s")
    store.save_assessment(aid="taken", source="api", inputs={}, result=RESULT,
                          patient_ref=None, caller="t")
    assert store._driver is not None
    transact, calls = store._driver.transact, []

    def counted(batch: Batch) -> None:
        audit_rows = sum(len(rows) for statement, rows in batch if statement is INSERTS["audit"])
        try:
            transact(batch)
        except sqlite3.Error:
            calls.append((audit_rows, "failed"))
            raise
        calls.append((audit_rows, "committed"))

    store._driver.transact = counted  # type: ignore[method-assign]
    fd = os.open(f"{tmp_path / 'db.sqlite3'}.writelock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another worker's commit under way
    errors: dict[str, BaseException] = {}

    def save(aid: str) -> None:
        try:
            store.save_assessment(aid=aid, source="api", inputs={}, result=RESULT,
                                  patient_ref=None, caller="t")
        except BaseException as e:  # reported below
            errors[aid] = e

    threads = [threading.Thread(target=save, args=(aid,)) for aid in ("lead", "a", "taken", "b")]
    threads[0].start()
    for _ in range(10_000):  # the first leads, and waits for the lock with its unit
        if store._writer._leading:
            break
        threading.Event().wait(0.001)
    for t in threads[1:]:
        t.start()
    for _ in range(10_000):
        if len(store._writer._pending) == 3:
            break
        threading.Event().wait(0.001)
    os.close(fd)
    for t in threads:
        t.join(30)
    assert list(errors) == ["taken"] and isinstance(errors["taken"], KeyConflict)
    assert calls[:2] == [(1, "committed"), (3, "failed")]  # the leader's own, then the batch
    assert sorted(calls[2:]) == [(1, "committed"), (1, "committed"), (1, "failed")]  # one by one
    assert sorted(r["id"] for r in store.rows("assessments")) == ["a", "b", "lead", "taken"]
    assert len(store.rows("audit")) == 4


def _write_in_child(store: SQLStore, parent_connection: int, answers: Any) -> None:
    try:
        assert store._driver is not None
        store.audit_event("child", "after-fork", None, {})
        own = store._driver.connection()
        answers.put({"own": id(own) != parent_connection,
                     "inherited_kept": parent_connection in {id(c) for c in _INHERITED}})
    except BaseException as e:  # reported to the test
        answers.put({"error": f"{type(e).__name__}: {e}"})


def test_a_connection_opened_before_a_fork_is_not_used_by_the_child(tmp_path: Path) -> None:
    """A forked process opens its own connection, and leaves the inherited one alone (kept,
    neither used nor closed); the parent goes on writing on its own; the file stays sound."""
    database = tmp_path / "db.sqlite3"
    store = SQLStore(f"sqlite:///{database}", b"s")
    store.audit_event("parent", "before-fork", None, {})
    assert store._driver is not None
    parent_connection = store._driver.connection()
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=_write_in_child,
                            args=(store, id(parent_connection), answers))
    child.start()
    answer = answers.get(timeout=60)
    child.join(60)
    assert answer == {"own": True, "inherited_kept": True}
    store.audit_event("parent", "after-fork", None, {})
    assert store._driver.connection() is parent_connection
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        actions = [r[0] for r in conn.execute("SELECT action FROM audit ORDER BY id")]
    assert actions == ["before-fork", "after-fork", "after-fork"]


@pytest.mark.parametrize(("synchronous", "expected"), [("FULL", FULL), ("NORMAL", NORMAL)])
def test_the_writer_connection_reads_back_its_synchronous_setting(
        tmp_path: Path, synchronous: str, expected: int) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'db.sqlite3'}", b"s", synchronous=synchronous)
    store.audit_event("t", "open", None, {})
    assert store._driver is not None
    conn = store._driver.connection()
    assert conn.execute("PRAGMA synchronous").fetchone() == (expected,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_only_a_plain_sqlite_file_is_written_on_the_driver(tmp_path: Path) -> None:
    """``sqlite://`` (in memory) has no file a second connection could open, a URI option or
    another SQLite driver is SQLAlchemy's to interpret: their writes stay on the engine."""
    assert SQLStore(f"sqlite+pysqlite:///{tmp_path / 'a.sqlite3'}", b"s")._driver is not None
    assert SQLStore("sqlite://", b"s")._driver is None
    assert SQLStore(f"sqlite:///file:{tmp_path / 'b.sqlite3'}?uri=true", b"s")._driver is None
    assert SQLStore(f"sqlite+pysqlcipher://:k@/{tmp_path / 'c.sqlite3'}", b"s")._driver is None


def test_a_ready_store_has_its_writers_connection_open(tmp_path: Path) -> None:
    """``ping`` (a worker's readiness check, after the fork) opens the connection the writes
    are committed on, so a worker's first assessment does not; the write then uses it."""
    store = SQLStore(f"sqlite:///{tmp_path / 'db.sqlite3'}", b"s")
    assert store._driver is not None and store._driver._conn is None
    assert store.ping()
    opened = store._driver._conn
    assert opened is not None
    store.audit_event("t", "first", None, {})
    assert store._driver.connection() is opened
