"""Smoke test: real gunicorn (the ``make serve`` configuration) answering over loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, load_example
from tests.service_fixtures import hook_call

STARTUP_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _request(url: str, body: Any = None) -> tuple[int, Any, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            raw = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as e:
        raw, status = e.read().decode(), e.code
    try:
        return status, json.loads(raw), raw
    except ValueError:
        return status, None, raw


@pytest.fixture
def served(tiny_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "GMED_BIND": f"127.0.0.1:{port}", "GMED_WORKERS": "2",
           "GMED_MODEL": str(tiny_model_dir), "GMED_AUTH": "off", "GMED_ENVIRONMENT": "development",
           "GMED_DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
           "GMED_PSEUDONYM_SECRET": "smoke", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "service/gunicorn_conf.py",
         "service:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                if _request(base + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("gunicorn did not become ready:\n"
                            + (tmp_path / "gunicorn.log").read_text()[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def test_gunicorn_serves_assessments_cards_and_metrics(served: str) -> None:
    status, body, _ = _request(served + "/v1/assessments", load_example("runner_pfp_hip_driven"))
    assert status == 201 and body["results"][0]["complaint"] == "pfp"
    status, body, _ = _request(served + "/cds-services/gmed-driver", hook_call())
    assert status == 200 and len(body["cards"]) == 1
    for _ in range(6):  # spread over both workers
        assert _request(served + "/ops/ping")[0] == 200
    status, _, text = _request(served + "/metrics")
    assert status == 200
    assert 'route="/v1/assessments",status="201"' in text
    assert "gmed_model_info" in text
