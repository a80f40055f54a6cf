"""Pins: a committed assessment is on disk before the client is answered.

Read back, not configured: the service's own store (the app as configured by default) is asked
for the effective ``PRAGMA synchronous`` (FULL = 2) and ``journal_mode`` (wal) of its engine's
connections and of the connection its writes are committed on
(:mod:`service.store.sqlite_writer`). And observed: a child process runs the service's store under
``strace -f -y -e trace=fsync,fdatasync`` and commits groups of writes from several threads;
every commit group is followed by at least one flush of the write-ahead log. The same run with
``SQLITE_SYNCHRONOUS=NORMAL`` (which flushes the log only at checkpoints) shows none, so the
count measures what it claims to.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from service.config import DEFAULTS
from service.store import get_store
from tests.service_fixtures import make_app

__all__ = ["make_app"]

ROOT = Path(__file__).resolve().parent.parent
FULL = 2
THREADS, WRITES = 6, 5


def _pragmas(app: Flask, connections: int = 3) -> list[tuple[int, str]]:
    """(synchronous, journal_mode) of several connections held open at once from the pool."""
    with app.app_context():
        engine = get_store().engine
        open_ = [engine.connect() for _ in range(connections)]
        try:
            return [(conn.exec_driver_sql("PRAGMA synchronous").scalar_one(),
                     conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()) for conn in open_]
        finally:
            for conn in open_:
                conn.close()


def test_the_default_configuration_asks_for_full_synchronous_commits() -> None:
    assert DEFAULTS["SQLITE_SYNCHRONOUS"] == "FULL"


def test_the_live_store_connections_are_synchronous_full_in_wal_mode(
        make_app: Callable[..., Flask]) -> None:
    app = make_app()  # the service's defaults: SQLITE_SYNCHRONOUS not overridden
    with app.app_context():
        store = get_store()
        store.audit_event("test", "durability", None, {"ok": True})
    assert _pragmas(app) == [(FULL, "wal")] * 3
    writer = store._driver.connection()  # type: ignore[attr-defined]  # the one that commits
    assert (writer.execute("PRAGMA synchronous").fetchone()[0],
            writer.execute("PRAGMA journal_mode").fetchone()[0]) == (FULL, "wal")


def test_normal_is_read_back_as_normal(make_app: Callable[..., Flask]) -> None:
    """The read-back tells the settings apart (NORMAL = 1), so the test above can fail."""
    assert _pragmas(make_app(SQLITE_SYNCHRONOUS="NORMAL"), 1) == [(1, "wal")]


CHILD = r"""
import json, os, sys, threading
from cds.model import load_model
from service import create_app
from service.store import get_store
from service.store.commit import GroupCommit

model_dir, database, synchronous, threads, writes = sys.argv[1:6]
config = {"MODEL": load_model(model_dir), "DATABASE_URL": f"sqlite:///{database}",
          "PSEUDONYM_SECRET": "durability", "AUTH": "off", "UI_AUTH": "off",
          "ENVIRONMENT": "development", "TESTING": True}
if synchronous != "default":
    config["SQLITE_SYNCHRONOUS"] = synchronous
app = create_app(config)
groups = []
commit = GroupCommit._commit
def counted(self, batch):
    commit(self, batch)
    groups.append(len(batch))
GroupCommit._commit = counted

def mark(name):  # a flush of a named file: a marker in the trace
    fd = os.open(database + "." + name, os.O_WRONLY | os.O_CREAT, 0o600)
    os.fsync(fd)
    os.close(fd)

with app.app_context():
    store = get_store()
    store.audit_event("warm-up", "durability", None, {})  # engine, tables, first commit
    groups.clear()
    def work(i):
        with app.app_context():
            for j in range(int(writes)):
                store.audit_event(f"t{i}", "durability", None, {"write": j})
    mark("begin")
    pool = [threading.Thread(target=work, args=(i,)) for i in range(int(threads))]
    for t in pool: t.start()
    for t in pool: t.join()
    mark("end")
print(json.dumps({"groups": len(groups), "units": sum(groups)}))
"""


def _traced(model_dir: Path, tmp_path: Path, synchronous: str) -> tuple[dict[str, int], int]:
    """Run the child under strace; (its commit groups, WAL flushes between the markers)."""
    strace = shutil.which("strace")
    assert strace, "strace is not installed (make environment installs it)"
    database = tmp_path / f"{synchronous}.sqlite3"
    log = tmp_path / f"{synchronous}.strace"
    run = subprocess.run(
        [strace, "-f", "-y", "-e", "trace=fsync,fdatasync", "-o", str(log), sys.executable,
         "-c", CHILD, str(model_dir), str(database), synchronous, str(THREADS), str(WRITES)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if run.returncode != 0 and ("ptrace" in run.stderr or "Operation not permitted" in run.stderr):
        pytest.skip(f"strace cannot attach here (ptrace denied): {run.stderr.strip()[:200]}")
    assert run.returncode == 0, run.stderr[-2000:]
    counts: dict[str, int] = json.loads(run.stdout.strip().splitlines()[-1])
    lines = log.read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if f"{database}.begin>" in line)
    end = next(i for i, line in enumerate(lines) if f"{database}.end>" in line)
    # with threads, strace splits a call that another thread interrupts into an "<unfinished
    # ...>" line (which names the file) and a "<... fsync resumed>" line (which does not)
    flushes = sum(1 for line in lines[begin:end]
                  if f"{database}-wal>" in line and ("= 0" in line or "<unfinished ...>" in line))
    return counts, flushes


def test_every_commit_group_flushes_the_write_ahead_log(tiny_model_dir: Path, tmp_path: Path) -> None:
    counts, flushes = _traced(tiny_model_dir, tmp_path, "default")
    assert counts["units"] == THREADS * WRITES and 1 <= counts["groups"] <= THREADS * WRITES
    assert flushes >= counts["groups"], (flushes, counts)


def test_without_full_synchronous_commits_do_not_flush(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The control: NORMAL commits the same groups with no flush of the log (so the count above
    is the commits' flushes, not something else's)."""
    counts, flushes = _traced(tiny_model_dir, tmp_path, "NORMAL")
    assert counts["units"] == THREADS * WRITES and flushes == 0
