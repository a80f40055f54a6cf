"""A throwaway PostgreSQL server for the store's tests: Debian's binaries, a fresh cluster in a
temporary folder, loopback only, stopped at the end of the session.

``make environment`` installs Debian's ``postgresql`` package when its binaries are absent, so
the suite always has one. PostgreSQL refuses to run as root; when the tests run as root (CI), the
cluster belongs to the ``postgres`` account the package creates and its commands run through
``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:  # `make environment` installs it: its absence is a broken environment
        pytest.fail("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin): run `make test`")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of the PostgreSQL server of this session (psycopg 3 driver), database
    ``postgres``; tests create their own databases on it."""
    bin_dir = _bin_dir()
    # the system's temporary folder, not pytest's (mode 0700: the postgres account cannot enter)
    root = Path(tempfile.mkdtemp(prefix="gmed-postgres-"))
    data, sockets = root / "data", root / "sockets"
    data.mkdir()
    sockets.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chmod(root, 0o711)
        for folder in (data, sockets):
            os.chown(folder, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "gmed",
                    "--auth=trust", "--no-sync", "-E", "UTF8"], check=True,
                   capture_output=True, cwd=root)
    server = subprocess.Popen([*prefix, str(bin_dir / "postgres"), "-D", str(data),
                               "-p", str(port), "-k", str(sockets),
                               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
    url = f"postgresql+psycopg://gmed@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("the test PostgreSQL server did not start")
            time.sleep(0.1)
    _wait_ready(url)
    try:
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(url: str) -> None:
    """Accepting TCP is not accepting sessions (the server may still be starting up)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url)
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        engine.dispose()
