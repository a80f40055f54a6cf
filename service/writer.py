"""Group commit: durable writes without one disk flush and one statement per request.

A committed SQLite transaction (``synchronous=FULL``) waits for the disk. Each worker process has
one writer thread: request threads hand it a unit of work (the statements to run, as data) and
block until it is committed; the writer takes every unit waiting at that moment, runs each
statement once for all of them (``executemany``: an insert of four assessments costs little more
than one) and commits once, so one flush serves them all. A caller is released only after the
commit that holds its work, so nothing the client is told about can be lost. If a batch fails,
its units are retried one by one, so one bad unit (a replayed token id) fails alone.

Statements run in an order the store gives (parents before children, see :class:`GroupCommit`),
each unit's rows in the order of the units. A caller that stops waiting (its request deadline)
withdraws its unit if the writer has not taken it yet; once taken, the caller waits for the
outcome, so the answer it gives is never "failed" for work that was committed, nor the reverse.

With SQLite, the writers of several worker processes also queue on a blocking file lock around
each commit: SQLite's own busy handler sleeps in growing steps (1, 2, 5, 10 ms...), which under
load costs more than the flush itself.
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql import Executable

Params = dict[str, Any]
Work = Sequence[tuple[Executable, Params | list[Params]]]
"""A unit of work: statements with their parameters (a dict, or a list of dicts for many rows)."""
MAX_BATCH = 256
PENDING, TAKEN, WITHDRAWN = 0, 1, 2


class WriteTimeout(Exception):
    """The unit was withdrawn before the writer took it: nothing of it was written."""


class _Unit:
    __slots__ = ("done", "error", "state", "work")

    def __init__(self, work: Work) -> None:
        self.work = work
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.state = PENDING


class GroupCommit:
    """One writer thread per process (started on first use, restarted after a fork).

    ``rank(statement)`` orders the statements of a batch: lower first (the store ranks by table
    dependency, so a child row never precedes its parent); equal ranks keep their first
    appearance.
    """

    def __init__(self, engine: Callable[[], Engine], rank: Callable[[Executable], int],
                 lock_file: Path | None = None) -> None:
        self._engine = engine
        self._rank = rank
        self._lock_file = lock_file
        self._queue: queue.SimpleQueue[_Unit] = queue.SimpleQueue()
        self._pid = -1
        self._lock = threading.Lock()  # start-up, and a unit's state
        self._lock_fd = -1

    def run(self, work: Work, timeout: float | None = None) -> None:
        """Run ``work`` in a committed transaction, or raise its error.

        With ``timeout``: if the writer has not taken the unit by then, it is withdrawn and
        :class:`WriteTimeout` is raised (nothing written); if it has, this waits for the commit.
        """
        self._ensure_thread()
        unit = _Unit(work)
        self._queue.put(unit)
        if not unit.done.wait(timeout):
            with self._lock:
                if unit.state == PENDING:
                    unit.state = WITHDRAWN
                    raise WriteTimeout("The store did not take the write in time")
            unit.done.wait()
        if unit.error is not None:
            raise unit.error

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.SimpleQueue()  # a queue inherited through fork is not ours
                self._lock_fd = -1  # nor is a lock file descriptor (flock locks are per open)
                threading.Thread(target=self._loop, name="gmed-writer", daemon=True).start()
                self._pid = os.getpid()

    def _take(self, unit: _Unit, batch: list[_Unit]) -> None:
        with self._lock:
            if unit.state == PENDING:
                unit.state = TAKEN
                batch.append(unit)

    def _loop(self) -> None:
        while True:
            batch: list[_Unit] = []
            self._take(self._queue.get(), batch)
            while len(batch) < MAX_BATCH:
                try:
                    self._take(self._queue.get_nowait(), batch)
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)

    @contextmanager
    def _interprocess(self) -> Iterator[None]:
        if self._lock_file is None:
            yield
            return
        if self._lock_fd < 0:  # opened once per process, by the writer thread only
            self._lock_fd = os.open(self._lock_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _statements(self, batch: list[_Unit]) -> list[tuple[Executable, list[Params]]]:
        """Each statement once, with the rows of every unit, in rank order."""
        rows: dict[Executable, list[Params]] = {}
        for unit in batch:
            for statement, params in unit.work:
                group = rows.setdefault(statement, [])
                if isinstance(params, list):
                    group.extend(params)
                else:
                    group.append(params)
        ordered = sorted(rows, key=self._rank)  # stable: first appearance within a rank
        return [(statement, rows[statement]) for statement in ordered if rows[statement]]

    def _commit(self, batch: list[_Unit]) -> None:
        try:
            with self._interprocess(), self._engine().begin() as conn:
                for statement, params in self._statements(batch):
                    conn.execute(statement, params[0] if len(params) == 1 else params)
        except BaseException as e:
            if len(batch) == 1:
                batch[0].error = e
            else:
                for unit in batch:  # isolate the failing unit: each alone, in its own transaction
                    self._commit([unit])
                return
        for unit in batch:
            unit.done.set()
