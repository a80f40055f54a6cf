"""The SQL store: :class:`~service.store.interface.Store` on SQLAlchemy Core.

Assessments, cards, feedback, outcomes, the audit trail and seen token ids, in the tables of
:data:`cds.store_schema.TABLES`, on any database URL; by default a SQLite file in the instance folder (WAL,
``synchronous=FULL``: a committed assessment survives a crash), created owner-only (0600, and so
its WAL and shared-memory files). Each write is one transaction,
committed before the caller answers the client, so an assessment the client was told about is
never lost. Patient references are pseudonymised with HMAC-SHA256 under a key derived from the
store's secret, namespaced by the calling issuer (:mod:`service.security.keys`); the raw reference is
never stored. Each assessment keeps the issuer that stored it (``issuer``): the API answers only
that issuer about it. The engine is created lazily per process (after gunicorn forks).

Writes go through the group commit (:mod:`service.store.commit`): on a SQLite file, on the
driver's own connection, one per process (:mod:`service.store.sqlite_writer`: SQLAlchemy's
pool and transaction cost more CPU than the inserts); on any other database (and SQLite in
memory), through SQLAlchemy. Reads, table creation and ``ping`` are SQLAlchemy's everywhere.

Faults: a write that fails (SQLite locked past ``STORE_BUSY_TIMEOUT``, disk full, database
unreachable) raises :class:`~service.http.errors.StoreUnavailable` (503) and stores nothing, so no
client is told an unrecorded assessment succeeded; the next write tries again. A SQLite file
removed or replaced under a running service is noticed before each commit (by inode) and reopened
(created if absent), instead of writing into the deleted file; server databases are reconnected
by pre-ping.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    Engine,
    MetaData,
    bindparam,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.sql import Executable

from cds.store_schema import build

from ..http import deadline
from ..http.errors import DeadlineExceeded, StoreUnavailable
from ..http.jsontext import encode
from . import sqlite_writer
from .commit import Batch, GroupCommit, Statements, Transact, WriteTimeout
from .interface import (
    AssessmentRow,
    Insert,
    KeyConflict,
    LinkedAssessment,
    Named,
    Row,
    table_name,
)
from .records import Records

metadata = MetaData()
TABLES = build(metadata)
assessments = TABLES["assessments"]
cards = TABLES["cards"]
feedback = TABLES["feedback"]
outcomes = TABLES["outcomes"]
audit = TABLES["audit"]
seen_tokens = TABLES["seen_tokens"]
assessment_links = TABLES["assessment_links"]
log = logging.getLogger("service")
# statements built once (SQLAlchemy compiles each once); the writer runs each once per batch
_INSERTS: dict[str, Executable] = {name: insert(table) for name, table in TABLES.items()}
_FORGET_TOKENS = seen_tokens.delete().where(seen_tokens.c.expires_at < bindparam("now_s"))
_TABLE_RANK = {table.name: i for i, table in enumerate(metadata.sorted_tables)}
_PLAIN_SQLITE = ("sqlite", "sqlite+pysqlite")


def _rank(statement: Executable | sqlite_writer.Statement) -> int:
    """Parents before children in a batch: the table's place in dependency order."""
    if isinstance(statement, sqlite_writer.Statement):
        return _TABLE_RANK[statement.table]
    return _TABLE_RANK[statement.table.name]  # type: ignore[attr-defined]


def _core_transact(engine: Engine) -> Transact:
    """A batch in one SQLAlchemy transaction on ``engine`` (each statement's rows at once)."""
    def transact(batch: Batch) -> None:
        with engine.begin() as conn:
            for statement, rows in batch:
                conn.execute(statement, rows[0] if len(rows) == 1 else rows)
    return transact


def _create_tables(engine: Engine, lock_file: Path | None) -> None:
    """``create_all`` under the writers' file lock: gunicorn workers open a fresh SQLite file at
    the same moment, and ``create_all`` looks, then creates, table by table ("table ... already
    exists" for all but one of them otherwise)."""
    try:
        fd = os.open(lock_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if lock_file else -1
    except OSError:
        fd = -1  # no folder for it: SQLite will say so in its own terms (OperationalError)
    if fd < 0:
        metadata.create_all(engine)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        metadata.create_all(engine)
    finally:
        os.close(fd)  # releases the lock


def _private_file(path: Path | None) -> None:
    """Create the SQLite file owner-only (0600) before SQLite does, or make an existing one so.

    SQLite creates its ``-wal`` and ``-shm`` files with the database file's permissions, so
    the three hold pseudonyms and inputs for the service's user only (the default umask would
    leave them 0644: readable by every local user)."""
    if path is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError:
        return  # no folder for it: SQLite will say so in its own terms (OperationalError)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):  # left by an earlier, laxer version
        with contextlib.suppress(OSError):  # absent (the usual case), or not ours to change
            os.chmod(f"{path}{suffix}", 0o600)


def _add_missing_columns(engine: Engine) -> None:
    """Columns added to a table after a database was created (``create_all`` makes only missing
    tables): ``assessments.issuer``. Idempotent; a concurrent worker's ``ALTER`` is fine."""
    present = {c["name"] for c in inspect(engine).get_columns("assessments")}
    if "issuer" in present:
        return
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE assessments ADD COLUMN issuer VARCHAR(256)"))
    except SQLAlchemyError:
        present = {c["name"] for c in inspect(engine).get_columns("assessments")}
        if "issuer" not in present:
            raise


class SQLStore(Records):
    """One database: lazy engine, its secret, and the writes and reads the service does.

    ``driver_writes=False`` writes a SQLite file through SQLAlchemy too (the benchmark's and the
    tests' comparison; the service never sets it)."""

    def __init__(self, url: str, secret: bytes, *, synchronous: str = "FULL",
                 busy_timeout: float = 5.0, driver_writes: bool = True) -> None:
        self.url = url
        self._secret = secret
        self._synchronous = synchronous
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._busy_timeout = busy_timeout
        parsed = make_url(url) if url.startswith("sqlite") else None  # others: on first use
        database = parsed.database if parsed else None
        self._file = Path(database) if database and database != ":memory:" else None
        self._file_id: tuple[int, int] | None = None
        self._lock_file = Path(f"{database}.writelock") if self._file else None
        # the standard library's driver opens what SQLAlchemy's pysqlite opens: a plain file,
        # no URI options (another SQLite driver, e.g. an encrypting one, keeps SQLAlchemy)
        plain = parsed is not None and parsed.drivername in _PLAIN_SQLITE and not parsed.query
        self._driver = (sqlite_writer.SQLiteWriter(self._file, synchronous=synchronous,
                                                   busy_timeout=busy_timeout)
                        if self._file is not None and plain and driver_writes else None)
        self._inserts: dict[str, Executable | sqlite_writer.Statement] = dict(
            sqlite_writer.INSERTS if self._driver else _INSERTS)
        self._forget_tokens = sqlite_writer.FORGET_TOKENS if self._driver else _FORGET_TOKENS
        self._writer = GroupCommit(self._connect_writer, _rank, self._lock_file)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._connect()
        return self._engine

    def _connect(self) -> Engine:
        sqlite = self.url.startswith("sqlite")
        # SQLite waits up to busy_timeout for another writer's lock; a server database's pooled
        # connections are tested on checkout, so a restarted server is reconnected to
        engine = create_engine(self.url, json_serializer=encode, pool_pre_ping=not sqlite,
                               connect_args={"timeout": self._busy_timeout} if sqlite else {})
        if sqlite:
            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={self._synchronous}")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        _private_file(self._file)
        _create_tables(engine, self._lock_file)
        _add_missing_columns(engine)
        self._file_id = self._file_identity()
        return engine

    def _file_identity(self) -> tuple[int, int] | None:
        if self._file is None:
            return None
        try:
            st = os.stat(self._file)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def _engine_for_write(self) -> Engine:
        """The engine, reopened first if its SQLite file was removed or replaced since it was
        opened: open connections would otherwise write into a deleted file and lose the rows."""
        engine = self.engine
        if self._file is not None and self._file_identity() != self._file_id:
            log.warning("store file removed or replaced: reopening it",
                        extra={"reason": "sqlite file identity changed"})
            engine.dispose()
            if self._driver is not None:
                self._driver.close()
            _private_file(self._file)
            _create_tables(engine, self._lock_file)
            self._file_id = self._file_identity()
        return engine

    def _connect_writer(self) -> Transact:
        """The group commit's ``connect``: the database ready for a batch (the engine and its
        tables, the file checked), and the way this store runs the batch."""
        engine = self._engine_for_write()
        if self._driver is None:
            return _core_transact(engine)
        self._driver.connection()  # opened before the writers' lock, as the engine is
        return self._driver.transact

    def secret(self) -> bytes:
        return self._secret

    def write(self, work: Sequence[Insert]) -> None:
        """Write ``work`` in a committed transaction (group commit: see
        :mod:`service.store.commit`). A database failure is a 503, never a 500; so is a write the
        writer could not take before the request's deadline (:mod:`service.http.deadline`), which is
        then withdrawn unwritten. A duplicate key or a missing parent is the caller's
        (:class:`~service.store.interface.KeyConflict`)."""
        inserts = self._inserts
        self._run([(inserts[i.table], i.rows) for i in work])

    def _run(self, statements: Statements) -> None:
        timeout = deadline.bounded(math.inf, "store")
        try:
            self._writer.run(statements, None if timeout == math.inf else timeout)
        except IntegrityError as e:
            raise KeyConflict(f"The store refused the write ({type(e.orig).__name__})") from e
        except sqlite3.IntegrityError as e:  # the driver's own (SQLite writes)
            raise KeyConflict(f"The store refused the write ({type(e).__name__})") from e
        except WriteTimeout as e:
            raise DeadlineExceeded("store") from e
        except (SQLAlchemyError, sqlite3.Error, OSError) as e:  # OSError: the writers' lock file
            log.warning("store write failed", extra={"error": type(e).__name__})
            raise StoreUnavailable("The store did not take the write") from e

    def ping(self) -> bool:
        """Whether the database answers (and, on a SQLite file, the writes' connection opens:
        a worker's first write does not open it)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            if self._driver is not None:
                self._driver.connection()
            return True
        except (SQLAlchemyError, sqlite3.Error):
            return False

    def get_assessment(self, aid: str) -> AssessmentRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(assessments).where(assessments.c.id == aid)).mappings().first()
        return cast(AssessmentRow, dict(row)) if row else None

    def previous_of(self, aid: str) -> str | None:
        """The id of the assessment ``aid`` was made from, if it was made from one."""
        query = select(assessment_links.c.previous_id).where(
            assessment_links.c.assessment_id == aid)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def patient_assessments(self, patient_ref: str, limit: int = 100
                            ) -> list[LinkedAssessment]:
        """A patient's assessments, newest first (at most ``limit``), each with the id of the
        one it was made from (``previous_id``, or ``None``)."""
        query = (select(assessments, assessment_links.c.previous_id)
                 .outerjoin(assessment_links, assessment_links.c.assessment_id == assessments.c.id)
                 .where(assessments.c.patient_ref == patient_ref)
                 .order_by(assessments.c.created_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [cast(LinkedAssessment, dict(row)) for row in conn.execute(query).mappings()]

    def known_cards(self, uuids: list[str], issuer: str | None = None) -> set[str]:
        """The uuids among ``uuids`` of cards given to ``issuer`` (another issuer's are unknown)."""
        of_issuer = (assessments.c.issuer.is_(None) if issuer is None
                     else assessments.c.issuer == issuer)
        query = (select(cards.c.uuid).join(assessments, cards.c.assessment_id == assessments.c.id)
                 .where(cards.c.uuid.in_(uuids), of_issuer))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r[0] for r in rows}

    def remember_token(self, jti: str, iss: str, expires_at: int, now_s: int) -> bool:
        """Record a token id until ``expires_at`` (the caller passes the last second the token
        is accepted: its ``exp`` plus the leeway); ``False`` if it was seen before (a replay)."""
        key = hashlib.sha256(f"{iss}\x00{jti}".encode()).hexdigest()
        try:
            self._run([(self._forget_tokens, {"now_s": now_s}),
                       (self._inserts["seen_tokens"], {"jti_hash": key, "expires_at": expires_at})])
        except KeyConflict:
            return False
        return True

    def assessment_of_hook(self, hook_instance: str, *, of_patient: bool = False,
                           patient_ref: str | None = None) -> str | None:
        """The newest assessment made by the CDS Hooks call ``hook_instance`` (with
        ``of_patient``: only one of ``patient_ref``)."""
        query = select(assessments.c.id).where(assessments.c.hook_instance == hook_instance)
        if of_patient:
            query = query.where(assessments.c.patient_ref == patient_ref)
        query = query.order_by(assessments.c.created_at.desc()).limit(1)
        with self.engine.connect() as conn:
            aid: str | None = conn.execute(query).scalar()
        return aid

    def recent_assessments(self, since: datetime, limit: int) -> list[Row]:
        """Assessments made since ``since``, newest first, at most ``limit`` (monitoring): each
        with its ``action``, ``inputs`` and ``outcomes`` (complaint -> hip_driver, the latest
        recorded per complaint)."""
        query = (select(assessments.c.id, assessments.c.created_at, assessments.c.action,
                        assessments.c.inputs)
                 .where(assessments.c.created_at >= since)
                 .order_by(assessments.c.created_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            found = [dict(r) for r in conn.execute(query).mappings()]
            ids = [r["id"] for r in found]
            labels = conn.execute(
                select(outcomes.c.assessment_id, outcomes.c.complaint, outcomes.c.hip_driver)
                .where(outcomes.c.assessment_id.in_(ids))
                .order_by(outcomes.c.recorded_at, outcomes.c.id)).all() if ids else []
        by_id: dict[str, dict[str, bool]] = {}
        for aid, complaint, hip_driver in labels:
            by_id.setdefault(aid, {})[complaint] = bool(hip_driver)
        return [{**r, "outcomes": by_id.get(r["id"], {})} for r in found]

    def rows(self, table: str | Named) -> list[Row]:
        """Every row of a table (tests and exports)."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(TABLES[table_name(table)])).mappings()]
