"""Group commit: durable writes without one disk flush per request.

A committed SQLite transaction (``synchronous=FULL``) waits for the disk (about 7 ms here). Each
worker process has one writer thread: request threads hand it a unit of work and block until it
is committed; the writer runs every unit waiting at that moment in one transaction, so one flush
serves them all. A caller is released only after the commit that holds its work, so nothing the
client is told about can be lost. If a batch fails, its units are retried one by one, so one bad
unit (a replayed token id) fails alone.

With SQLite, the writers of several worker processes also queue on a blocking file lock around
each commit: SQLite's own busy handler sleeps in growing steps (1, 2, 5, 10 ms...), which under
load costs more than the flush itself.
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

Work = Callable[[Connection], Any]
MAX_BATCH = 256


class _Unit:
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Work) -> None:
        self.work = work
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.result: Any = None


class GroupCommit:
    """One writer thread per process (started on first use, restarted after a fork)."""

    def __init__(self, engine: Callable[[], Engine], lock_file: Path | None = None) -> None:
        self._engine = engine
        self._lock_file = lock_file
        self._queue: queue.SimpleQueue[_Unit] = queue.SimpleQueue()
        self._pid = -1
        self._lock = threading.Lock()

    def run(self, work: Work) -> Any:
        """Run ``work(conn)`` in a committed transaction; return its result or raise its error."""
        self._ensure_thread()
        unit = _Unit(work)
        self._queue.put(unit)
        unit.done.wait()
        if unit.error is not None:
            raise unit.error
        return unit.result

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.SimpleQueue()  # a queue inherited through fork is not ours
                threading.Thread(target=self._loop, name="gmed-writer", daemon=True).start()
                self._pid = os.getpid()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    @contextmanager
    def _interprocess(self) -> Iterator[None]:
        if self._lock_file is None:
            yield
            return
        with self._lock_file.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _commit(self, batch: list[_Unit]) -> None:
        try:
            with self._interprocess(), self._engine().begin() as conn:
                for unit in batch:
                    unit.result = unit.work(conn)
        except BaseException as e:
            if len(batch) == 1:
                batch[0].error = e
            else:
                for unit in batch:  # isolate the failing unit: each alone, in its own transaction
                    unit.result = None
                    self._commit([unit])
                return
        for unit in batch:
            unit.done.set()
