"""Group commit (the SQL store's writer): durable writes without one disk flush and one statement per request.

A committed SQLite transaction (``synchronous=FULL``) waits for the disk. Request threads queue
their unit of work (the statements to run, as data); when no commit is under way, the thread
that queued takes every unit waiting at that moment and commits them itself (leader and
followers: no writer thread, so no hand-over between threads when there is no contention). It
runs each statement once for all of them (``executemany``: an insert of four assessments costs
little more than one) and commits once, so one flush serves them all; meanwhile the next units
queue for the next leader. A caller is released only after the commit that holds its work, so
nothing the client is told about can be lost. If a batch fails, its units are retried one by one,
so one bad unit (a replayed token id) fails alone.

Statements run in an order the store gives (parents before children, see :class:`GroupCommit`),
each unit's rows in the order of the units. A caller that stops waiting (its request deadline)
withdraws its unit if no leader has taken it yet; once taken, the caller waits for the outcome,
so the answer it gives is never "failed" for work that was committed, nor the reverse.

With SQLite, the commits of several worker processes also queue on a blocking file lock:
SQLite's own busy handler sleeps in growing steps (1, 2, 5, 10 ms...), which under load costs
more than the flush itself.

The writer knows no database: the store gives it ``connect``, called by each leader before it
takes the file lock, which returns the function that runs a batch's statements in one committed
transaction (SQLAlchemy's :meth:`~sqlalchemy.engine.Engine.begin`, or the SQLite driver's own
connection, :mod:`service.store.sqlite_writer`).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Params = dict[str, Any]
Statements = Sequence[tuple[Hashable, Params | Sequence[Params]]]
"""A unit of work: statements with their parameters (a dict, or a sequence of dicts for many
rows). The SQL store's own currency: callers of the store write
:class:`~service.store.interface.Insert` values, which :meth:`~service.store.sql.SQLStore.write`
turns into these. A statement is whatever the store's ``transact`` runs (a SQLAlchemy statement,
or a :class:`~service.store.sqlite_writer.Statement`)."""
Batch = list[tuple[Any, list[Params]]]
"""A batch as ``transact`` runs it: each statement once, with the rows of every unit."""
Transact = Callable[[Batch], None]
"""Runs a batch in one committed transaction, or raises with nothing of it written."""
MAX_BATCH = 256
PENDING, TAKEN, DONE, WITHDRAWN = 0, 1, 2, 3


class WriteTimeout(Exception):
    """The unit was withdrawn before the writer took it: nothing of it was written."""


class _Unit:
    __slots__ = ("error", "state", "work")

    def __init__(self, work: Statements) -> None:
        self.work = work
        self.error: BaseException | None = None
        self.state = PENDING


class GroupCommit:
    """Group commit in one process's request threads (see the module docstring).

    ``connect()`` readies the database for a batch (outside the file lock: opening a store may
    take it itself) and returns its ``transact``. ``rank(statement)`` orders the statements of a
    batch: lower first (the store ranks by table dependency, so a child row never precedes its
    parent); equal ranks keep their first appearance.
    """

    def __init__(self, connect: Callable[[], Transact], rank: Callable[[Any], int],
                 lock_file: Path | None = None) -> None:
        self._connect = connect
        self._rank = rank
        self._lock_file = lock_file
        self._cond = threading.Condition()
        self._pending: list[_Unit] = []
        self._leading = False
        self._lock_fd = -1
        self._lock_pid = -1

    def run(self, work: Statements, timeout: float | None = None) -> None:
        """Run ``work`` in a committed transaction, or raise its error.

        With ``timeout``: if no leader has taken the unit by then, it is withdrawn and
        :class:`WriteTimeout` is raised (nothing written); if one has, this waits for the commit.
        """
        unit = _Unit(work)
        ends = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._pending.append(unit)
            while unit.state == PENDING and self._leading:
                left = None if ends is None else ends - time.monotonic()
                if left is not None and left <= 0:
                    self._pending.remove(unit)
                    unit.state = WITHDRAWN
                    raise WriteTimeout("The store did not take the write in time")
                self._cond.wait(left)
            batch: list[_Unit] = []
            if unit.state == PENDING:  # no commit under way: this thread leads the next one
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                for taken in batch:
                    taken.state = TAKEN
                self._leading = True
        if batch:
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    for taken in batch:
                        taken.state = DONE
                    self._leading = False
                    self._cond.notify_all()
        else:
            with self._cond:
                while unit.state != DONE:
                    self._cond.wait()
        if unit.error is not None:
            raise unit.error

    @contextmanager
    def _interprocess(self) -> Iterator[None]:
        if self._lock_file is None:
            yield
            return
        if self._lock_pid != os.getpid():  # opened once per process (flock locks are per open)
            self._lock_fd = os.open(self._lock_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._lock_pid = os.getpid()
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _statements(self, batch: list[_Unit]) -> Batch:
        """Each statement once, with the rows of every unit, in rank order."""
        rows: dict[Any, list[Params]] = {}
        for unit in batch:
            for statement, params in unit.work:
                group = rows.setdefault(statement, [])
                if isinstance(params, dict):
                    group.append(params)
                else:
                    group.extend(params)
        ordered = sorted(rows, key=self._rank)  # stable: first appearance within a rank
        return [(statement, rows[statement]) for statement in ordered if rows[statement]]

    def _commit(self, batch: list[_Unit]) -> None:
        """Commit the batch, or each unit alone if it fails (errors are kept on the units)."""
        try:
            transact = self._connect()  # before the lock: opening a store may take it itself
            with self._interprocess():
                transact(self._statements(batch))
        except BaseException as e:
            if len(batch) == 1:
                batch[0].error = e
            else:
                for unit in batch:  # isolate the failing unit: each alone, in its own transaction
                    self._commit([unit])
