"""The SQLite store's writes on the driver itself: one ``sqlite3`` connection per process.

A durable write of an assessment is two or three inserts and a commit that waits for the disk;
SQLAlchemy's connection pool, transaction and statement machinery around them cost more CPU
than the inserts (``bench/store_write.py``). So the SQL store writes a SQLite file through one
connection of the standard library's driver per process (:class:`SQLiteWriter`), used only by
the group commit's leader of the moment (:mod:`service.store.commit`: one batch at a time), in
WAL mode with the configured ``synchronous`` (``FULL``: a commit is flushed before the caller is
answered), foreign keys enforced, ``BEGIN IMMEDIATE`` ... ``COMMIT`` around each batch, each
statement run once for the batch (``executemany``). Reads, table creation and every other
database stay on SQLAlchemy (:mod:`service.store.sql`).

The statements (:data:`INSERTS`, :data:`FORGET_TOKENS`) are SQL text built once per table from
:data:`cds.store_schema.TABLES`, every column but an autoincrement key, with the values
converted exactly as SQLAlchemy stores them in SQLite (a test compares the stored text): JSON
through the store's serialiser (an :class:`~service.http.jsontext.EncodedJSON` result as is; an
explicit ``None`` is JSON ``null``, an absent key SQL ``NULL``), datetimes as
``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy's SQLite format: the time zone is not stored),
booleans as 0 or 1.

A connection is never used by a process other than the one that opened it (SQLite's rule on
``fork``): a worker forked from a process that had opened one opens its own, and leaves the
inherited one alone, neither used nor closed (closing it could checkpoint and remove the WAL
under the process that owns it). Under gunicorn none is opened in the master anyway: the first
write of each worker opens it.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds.store_schema import TABLES, Column

from ..http.jsontext import encode
from .commit import Batch, Params

Convert = Callable[[Any], Any]
_STRICT_BOOLS = frozenset({None, True, False})
_INHERITED: list[sqlite3.Connection] = []  # a parent process's connections: kept, never touched


def _datetime(value: Any) -> str | None:
    """SQLAlchemy's SQLite ``DATETIME`` storage format (``DateTime(timezone=True)`` included)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
                f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}")
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d} 00:00:00.000000"
    raise TypeError("SQLite DateTime type only accepts Python datetime and date objects as input.")


def _boolean(value: Any) -> int | None:
    """SQLAlchemy's ``Boolean`` on SQLite: ``None``, ``True`` or ``False`` only, stored as 0/1."""
    if value not in _STRICT_BOOLS:
        if not isinstance(value, int):
            raise TypeError(f"Not a boolean value: {value!r}")
        raise ValueError(f"Value {value!r} is not None, True, or False")
    return None if value is None else int(value)


_CONVERT: dict[str, Convert | None] = {
    "string": None, "integer": None, "boolean": _boolean, "datetime": _datetime, "json": encode}


@dataclass(frozen=True, eq=False)
class Statement:
    """One statement of the SQLite writer: its table, SQL text, and each parameter's row key and
    conversion (``None``: the value as is). Compared by identity: each is built once."""

    table: str
    sql: str
    params: tuple[tuple[str, Convert | None], ...]

    def values(self, rows: Sequence[Params]) -> list[tuple[Any, ...]]:
        """The parameters of each row, in order (an absent key is SQL ``NULL``)."""
        params = self.params
        return [tuple([row.get(key) if convert is None
                       else convert(row[key]) if key in row else None
                       for key, convert in params]) for row in rows]


def _insert(table: str, columns: tuple[Column, ...]) -> Statement:
    """The insert of every column of ``table`` but an autoincrement key."""
    kept = [c for c in columns if not c.autoincrement]
    sql = (f"INSERT INTO {table} ({', '.join(c.name for c in kept)}) "
           f"VALUES ({', '.join('?' for _ in kept)})")
    return Statement(table, sql, tuple((c.name, _CONVERT[c.type]) for c in kept))


INSERTS: dict[str, Statement] = {name: _insert(name, cols) for name, cols in TABLES.items()}
FORGET_TOKENS = Statement("seen_tokens", "DELETE FROM seen_tokens WHERE expires_at < ?",
                          (("now_s", None),))


class SQLiteWriter:
    """This process's driver connection to one SQLite file, for the group commit's batches
    (see the module docstring). Not for concurrent use: the writer's leader is one at a time."""

    def __init__(self, path: Path, *, synchronous: str = "FULL", busy_timeout: float = 5.0
                 ) -> None:
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._opening = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This process's connection, opened on first use in this process (by the writer's
        leader, or by the store's ``ping``: hence the lock)."""
        conn = self._conn
        if conn is not None and self._pid == os.getpid():
            return conn
        with self._opening:
            conn = self._conn
            if conn is None or self._pid != os.getpid():
                if conn is not None:  # opened by the process this one was forked from
                    _INHERITED.append(conn)
                self._conn = None
                conn = self._conn = self._open()
                self._pid = os.getpid()
            return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def transact(self, batch: Batch) -> None:
        """Run ``batch`` (statements of :data:`INSERTS` and :data:`FORGET_TOKENS` with their
        rows) in one committed transaction, or raise (``sqlite3.Error``) with nothing written."""
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement, rows in batch:
                conn.executemany(statement.sql, statement.values(rows))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    self.close()  # a connection that cannot roll back is not reused
            raise

    def close(self) -> None:
        """Close this process's connection (the next batch opens a new one); an inherited one
        is left alone."""
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            conn.close()
        elif conn is not None:
            _INHERITED.append(conn)
