"""The production stack for tests: ``python -m deploy.serve`` (nginx in front of gunicorn), and
gunicorn alone with the same settings, each on a loopback ephemeral port and torn down on exit.

Debian's nginx is required: ``make test`` installs it (``make environment``); without it these
tests skip, and fail under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

STARTUP_S = 60.0
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def require_nginx() -> None:
    """Skip the calling module without nginx (fail under CI, where ``make test`` installed it)."""
    if not os.access(NGINX, os.X_OK):
        reason = "Debian's nginx is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]  # as sent, repeats included
    raw: bytes
    elapsed_s: float

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    def header(self, name: str) -> list[str]:
        """Every value sent under ``name`` (case-insensitive)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


def call(url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None, *,
         method: str | None = None, timeout: float = 10.0,
         context: ssl.SSLContext | None = None) -> Answer:
    """One HTTP exchange; an HTTP error status is an answer, a timeout or reset raises."""
    req = urllib.request.Request(url, data=body, headers=dict(headers or {}), method=method)
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return Answer(r.status, r.headers.items(), r.read(), time.monotonic() - start)
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers.items(), e.read(), time.monotonic() - start)


@dataclass
class Served:
    """A running stack: its base URL, its processes' log, and the parent to stop."""

    base: str
    proc: subprocess.Popen[bytes]
    log: Path
    run_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])


def app_env(tmp: Path, model_dir: Path, **extra: str) -> dict[str, str]:
    """The app's settings for a test stack: the tiny model, a fresh SQLite store, 2 workers."""
    return {**os.environ, "GMED_WORKERS": "2", "GMED_MODEL": str(model_dir),
            "GMED_ENVIRONMENT": "development", "GMED_AUTH": "off", "GMED_UI_AUTH": "off",
            "GMED_DATABASE_URL": f"sqlite:///{tmp / 'store.sqlite3'}",
            "GMED_PSEUDONYM_SECRET": "smoke", "PROMETHEUS_MULTIPROC_DIR": str(tmp),
            "PYTHONPATH": str(ROOT), **extra}


def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            if call(served.base + "/readyz", timeout=2).status == 200:
                return
        except OSError:
            pass
        if served.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("the stack did not become ready:\n" + served.log.read_text()[-3000:])
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextmanager
def production_stack(tmp: Path, env: dict[str, str]) -> Iterator[Served]:
    """``python -m deploy.serve``: nginx on a loopback port, gunicorn on a unix socket."""
    port = free_port()
    run_dir = tmp / "run"
    env = {**env, "GMED_PROXY_LISTEN": f"127.0.0.1:{port}", "GMED_RUN_DIR": str(run_dir)}
    log = tmp / "stack.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "deploy.serve"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", proc, log, run_dir, env)
    try:
        _wait_ready(served)
        yield served
    finally:
        stop(proc)


@contextmanager
def gunicorn_alone(tmp: Path, env: dict[str, str]) -> Iterator[Served]:
    """gunicorn with the same configuration (``service/gunicorn_conf.py``), nothing in front."""
    port = free_port()
    env = {**env, "GMED_BIND": f"127.0.0.1:{port}"}
    log = tmp / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-c", "service/gunicorn_conf.py",
             "--control-socket", str(tmp / "gunicorn.ctl"), "service:create_app()"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", proc, log, None, env)
    try:
        _wait_ready(served)
        yield served
    finally:
        stop(proc)
