"""The store: group commit keeps every write, a bad unit fails alone, references are pseudonymous."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from service.http.errors import StoreUnavailable
from service.store import (
    Insert,
    KeyConflict,
    SQLStore,
    assessments,
    audit,
    cards,
    feedback,
    now,
    outcomes,
    seen_tokens,
)
from service.store.commit import GroupCommit, WriteTimeout
from service.store.sql import _INSERTS, _core_transact, _rank

RESULT: dict[str, Any] = {"model": {"id": "gmed-driver", "version": "1"}, "action": "assess",
                          "red_flags": [], "results": [{"complaint": "pfp", "band": "low"}]}


@pytest.fixture
def store(tmp_path: Path) -> SQLStore:
    return SQLStore(f"sqlite:///{tmp_path / 'db.sqlite3'}", b"secret")


def test_concurrent_writes_are_all_committed(store: SQLStore) -> None:
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


def test_replayed_token_fails_alone_in_a_batch(store: SQLStore) -> None:
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


def test_expired_token_ids_are_forgotten(store: SQLStore) -> None:
    store.remember_token("old", "iss", expires_at=100, now_s=50)
    store.remember_token("new", "iss", expires_at=300, now_s=200)
    assert len(store.rows(seen_tokens)) == 1


def test_pseudonym_is_stable_and_keyed(store: SQLStore, tmp_path: Path) -> None:
    other = SQLStore(f"sqlite:///{tmp_path / 'other.sqlite3'}", b"another secret")
    assert store.pseudonym("p1") == store.pseudonym("p1") != other.pseudonym("p1")
    assert store.pseudonym("p1") != "p1" and len(store.pseudonym("p1") or "") == 64
    assert store.pseudonym(None) is None


def test_database_failure_is_a_503_not_a_500(tmp_path: Path) -> None:
    broken = SQLStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite3'}", b"k")
    with pytest.raises(StoreUnavailable):
        broken.audit_event("caller", "test", None, {})


def test_a_failing_unit_does_not_lose_the_others(store: SQLStore) -> None:
    bad = [Insert("audit", ({"at": None, "caller": "c", "action": "x", "patient_ref": None,
                             "model_version": None, "assessment_id": None,
                             "returned": None},))]  # at is NOT NULL

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
    assert len(errors) == 1 and isinstance(errors[0], KeyConflict)
    assert len(store.rows(audit)) == 5


def _held_writers_lock(store: SQLStore) -> Any:
    """Hold the writers' file lock (as another worker's commit would) until the fd is closed."""
    import fcntl
    import os

    fd = os.open(f"{store.engine.url.database}.writelock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_mixed_batch_keeps_parents_before_children(store: SQLStore) -> None:
    """Assessments with cards, feedback on those cards, outcomes and tokens, queued while the
    writer is blocked, commit as one batch with foreign keys enforced."""
    import os

    first = store.save_assessment(source="api", inputs={}, result=RESULT, patient_ref=None,
                                  caller="t", card_rows=[{"uuid": "card-0", "complaint": "pfp",
                                                          "suggestion_uuid": None}])
    fd = _held_writers_lock(store)
    calls = [lambda i=i: store.save_assessment(
                 source="cds-hooks", inputs={}, result=RESULT, patient_ref=None, caller="t",
                 card_rows=[{"uuid": f"card-{i}", "complaint": "pfp", "suggestion_uuid": None}])
             for i in range(1, 6)]
    calls += [lambda: store.save_feedback([{"card_uuid": "card-0", "outcome": "accepted",
                                            "accepted_suggestions": [], "override_reason": None,
                                            "outcome_timestamp": "2026-01-01T00:00:00Z"}], "t"),
              lambda: store.save_outcome(assessment_id=first, complaint="pfp", hip_driver=True,
                                         confirmed_on=None, caller="t", patient_ref=None),
              lambda: store.remember_token("jti-a", "iss", 2_000_000_000, 1_000)]
    errors: list[BaseException] = []

    def run(call: Any) -> None:
        try:
            call()
        except BaseException as e:  # the test reports any failure below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    writer = store._writer  # wait until all but the blocked leader's unit are queued
    for _ in range(10_000):
        if len(writer._pending) >= len(calls) - 1:
            break
        threading.Event().wait(0.001)
    os.close(fd)  # the writer goes on with everything queued meanwhile
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.rows(assessments)) == 6 and len(store.rows(cards)) == 6
    assert len(store.rows(feedback)) == 1 and len(store.rows(outcomes)) == 1
    assert len(store.rows(audit)) == 8 and len(store.rows(seen_tokens)) == 1


def test_a_write_not_taken_in_time_is_withdrawn_and_never_written(store: SQLStore) -> None:
    """The deadline case. A unit the writer has taken is waited for even past the caller's
    timeout (its caller is told the truth: success); a unit still queued when its caller's
    timeout ends is withdrawn (the caller is told it failed) and never written."""
    entered, release = threading.Event(), threading.Event()

    def blocking_rank(statement: Any) -> int:
        entered.set()  # the writer has taken a unit and is building its batch
        assert release.wait(10)
        return 0

    writer = GroupCommit(lambda: _core_transact(store.engine), blocking_rank)
    outcome: list[BaseException | None] = []
    first = threading.Thread(target=lambda: outcome.append(
        _error_of(lambda: writer.run([(insert(audit), _row("taken"))], timeout=0.01))))
    first.start()
    assert entered.wait(10)
    with pytest.raises(WriteTimeout):
        writer.run([(insert(audit), _row("withdrawn"))], timeout=0.01)
    release.set()
    first.join(10)
    assert outcome == [None]
    writer.run([(insert(audit), _row("after"))])  # the writer carries on
    assert [r["action"] for r in store.rows(audit)] == ["taken", "after"]


def _row(action: str) -> dict[str, Any]:
    return {"at": now(), "caller": "c", "action": action, "patient_ref": None,
            "model_version": None, "assessment_id": None, "returned": None}


def _error_of(call: Any) -> BaseException | None:
    try:
        call()
    except BaseException as e:  # returned to the test
        return e
    return None


def test_a_batch_runs_each_statement_once_parents_first(store: SQLStore) -> None:
    """Rows of one statement from every unit go in one ``executemany``, in unit order; a child
    table's statement comes after its parent's whatever order the units came in."""
    from service.store.commit import _Unit

    _INSERT_ASSESSMENT, _INSERT_AUDIT, _INSERT_CARD = (
        _INSERTS["assessments"], _INSERTS["audit"], _INSERTS["cards"])

    card = {"uuid": "c1", "assessment_id": "a1", "complaint": "pfp", "suggestion_uuid": None}
    units = [_Unit([(_INSERT_CARD, [card])]),
             _Unit([(_INSERT_ASSESSMENT, {"id": "a1"}), (_INSERT_AUDIT, {"action": "one"})]),
             _Unit([(_INSERT_AUDIT, {"action": "two"})])]
    statements = GroupCommit(store._connect_writer, _rank)._statements(units)
    order = [s for s, _ in statements]
    assert order.index(_INSERT_ASSESSMENT) < order.index(_INSERT_CARD)
    assert dict(statements)[_INSERT_AUDIT] == [{"action": "one"}, {"action": "two"}]
    assert len(order) == 3


def _open_fresh_store(url: str, start: Any, answers: Any) -> None:
    start.wait()
    try:
        answers.put("ok" if SQLStore(url, b"k").ping() else "not answering")
    except Exception as e:  # reported to the test
        answers.put(f"{type(e).__name__}: {e}")


def test_workers_opening_a_fresh_store_at_once_all_get_it(tmp_path: Path) -> None:
    """gunicorn's workers open a new SQLite file at the same moment; creating its tables is
    serialised under the writers' lock, so none of them loses the race ("table ... already
    exists" left about 1 worker in 10 not ready before)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    failures = []
    for trial in range(12):
        url = f"sqlite:///{tmp_path / f'fresh-{trial}.sqlite3'}"
        start, answers = context.Barrier(3), context.Queue()
        workers = [context.Process(target=_open_fresh_store, args=(url, start, answers))
                   for _ in range(3)]
        for w in workers:
            w.start()
        failures += [a for a in (answers.get(timeout=60) for _ in workers) if a != "ok"]
        for w in workers:
            w.join(timeout=60)
    assert failures == []


def _stored_text(engine: Any, table: Any) -> list[tuple[Any, ...]]:
    """The rows as SQLite holds them (the text of JSON and datetimes, not their Python values)."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY 1")]


def test_driver_inserts_store_exactly_what_sqlalchemy_stores(tmp_path: Path) -> None:
    """The SQLite writer (driver ``executemany``, :mod:`service.store.sqlite_writer`) writes the
    same text as SQLAlchemy's ``Connection.execute``: JSON encoded the same, datetimes in
    SQLAlchemy's format, booleans as 0/1, an explicit None in a JSON column as JSON null and an
    absent key as SQL NULL."""
    at = now()
    rows = {
        assessments: [{"id": "a1", "created_at": at, "patient_ref": "p", "source": "api",
                       "hook_instance": None, "model_id": "m", "model_version": "1",
                       "action": "assess", "inputs": {"age": 30, "notes": "é"},
                       "result": RESULT}],
        cards: [{"uuid": "c1", "assessment_id": "a1", "complaint": "pfp",
                 "suggestion_uuid": None}],
        feedback: [{"card_uuid": "c1", "outcome": "accepted", "accepted_suggestions": None,
                    "outcome_timestamp": "2026-01-01T00:00:00Z", "received_at": at,
                    "caller": "ehr"},  # override_reason absent
                   {"card_uuid": "c1", "outcome": "overridden", "accepted_suggestions": ["s"],
                    "override_reason": {"code": "x"}, "outcome_timestamp": "t",
                    "received_at": at, "caller": None}],
        outcomes: [{"id": "o1", "assessment_id": "a1", "complaint": "pfp", "hip_driver": True,
                    "confirmed_on": None, "recorded_at": at, "caller": "c"},
                   {"id": "o2", "assessment_id": "a1", "complaint": "itb", "hip_driver": False,
                    "confirmed_on": "2026-01-02", "recorded_at": at, "caller": "c"}],
        audit: [{"at": at, "caller": "c", "action": "api", "patient_ref": None,
                 "model_version": "1", "assessment_id": "a1", "returned": {"n": 1}}] * 2,
        seen_tokens: [{"jti_hash": "h", "expires_at": 5}],
    }
    core = SQLStore(f"sqlite:///{tmp_path / 'core.sqlite3'}", b"s").engine
    with core.begin() as conn:
        for table, table_rows in rows.items():
            for row in table_rows:  # one by one: an omitted key is omitted from that insert
                conn.execute(insert(table), row)
    driver = SQLStore(f"sqlite:///{tmp_path / 'driver.sqlite3'}", b"s")
    assert driver._driver is not None  # a SQLite file: the driver's way
    driver.write([Insert(table.name, tuple(table_rows))  # type: ignore[arg-type]
                  for table, table_rows in rows.items()])
    for table in rows:
        assert _stored_text(driver.engine, table) == _stored_text(core, table), table.name
    assert _stored_text(driver.engine, feedback)[0][4] is None  # absent: SQL NULL
    assert _stored_text(driver.engine, feedback)[0][3] == "null"  # explicit None: JSON null


def test_a_duplicate_key_on_the_driver_way_is_a_key_conflict(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'db.sqlite3'}", b"s")
    row = {"jti_hash": "h", "expires_at": 5}
    store.write([Insert("seen_tokens", (row,))])
    with pytest.raises(KeyConflict, match="IntegrityError"):
        store.write([Insert("seen_tokens", (row,))])
    assert len(_stored_text(store.engine, seen_tokens)) == 1


@pytest.fixture
def lax_umask() -> Any:
    """The common default umask (0022: files 0644, readable by every local user)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(database: Path) -> dict[str, int]:
    """The modes of the database file and of its WAL and shared-memory files, where present."""
    files = [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in files if p.exists()}


def test_the_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path, lax_umask: Any) -> None:
    database = tmp_path / "db.sqlite3"
    store = SQLStore(f"sqlite:///{database}", b"secret")
    store.save_assessment(source="api", inputs={}, result=RESULT, patient_ref="p", caller="t")
    with store.engine.connect() as conn:  # a reader holds the WAL and SHM open
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        modes = _modes(database)
    assert {"db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o600)


def test_a_laxer_existing_database_is_made_owner_only(tmp_path: Path, lax_umask: Any) -> None:
    database = tmp_path / "db.sqlite3"
    SQLStore(f"sqlite:///{database}", b"secret").save_assessment(
        source="api", inputs={}, result=RESULT, patient_ref="p", caller="t")
    for name in _modes(database):
        (tmp_path / name).chmod(0o644)
    store = SQLStore(f"sqlite:///{database}", b"secret")
    store.save_assessment(source="api", inputs={}, result=RESULT, patient_ref="p", caller="t")
    assert len(_modes(database)) == 3 and set(_modes(database).values()) == {0o600}
    assert len(store.rows(assessments)) == 2


def test_a_database_recreated_after_removal_is_owner_only(tmp_path: Path, lax_umask: Any) -> None:
    database = tmp_path / "db.sqlite3"
    store = SQLStore(f"sqlite:///{database}", b"secret")
    store.save_assessment(source="api", inputs={}, result=RESULT, patient_ref="p", caller="t")
    for path in tmp_path.glob("db.sqlite3*"):
        path.unlink()
    store.save_assessment(source="api", inputs={}, result=RESULT, patient_ref="p", caller="t")
    assert database.exists() and set(_modes(database).values()) == {0o600}
