"""The running service picks up an alias change without a restart, and never serves a bad model."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import cds
from cds.model import MODEL_ID
from training.artefact import seal
from training.registry import read_registry, set_alias

from .conftest import ROOT, load_example

SHIPPED = ROOT / "models" / MODEL_ID / read_registry(ROOT / "models")["aliases"]["production"]
RELOAD_S = 0.05


def _version(root: Path, version: str, *, calibration: dict[str, float] | None = None,
             flip_byte: bool = False) -> None:
    """A copy of the shipped model as ``version``: recalibrated, or corrupted after sealing."""
    target = root / MODEL_ID / version
    shutil.copytree(SHIPPED, target)
    meta = json.loads((target / "metadata.json").read_text())
    meta["version"] = version
    (target / "metadata.json").write_text(json.dumps(meta))
    if calibration is not None:
        (target / "calibration.json").write_text(json.dumps({"method": "platt", **calibration}))
    seal(target)
    if flip_byte:
        data = bytearray((target / "model.txt").read_bytes())
        data[len(data) // 3] ^= 0x01
        (target / "model.txt").write_bytes(bytes(data))


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    models = tmp_path / "models"
    _version(models, "0.1.0")
    _version(models, "0.1.1", calibration={"intercept": 0.3, "slope": 0.95})
    _version(models, "0.1.2-corrupt", flip_byte=True)
    _version(models, "0.1.3-misbehaves", calibration={"intercept": 0.0, "slope": -1e6})
    set_alias(models, "production", "0.1.0")
    monkeypatch.setenv("GMED_MODELS_DIR", str(models))
    return models


@pytest.fixture
def app(root: Path, make_app: Callable[..., Flask]) -> Flask:
    return make_app(MODEL="production", MODEL_RELOAD_INTERVAL=RELOAD_S)


def _assess(app: Flask) -> tuple[int, str | None]:
    response = app.test_client().post("/v1/assessments", json=load_example("runner_pfp_hip_driven"))
    body: dict[str, Any] = response.get_json() or {}
    return response.status_code, body.get("model", {}).get("version")


def _served_within(app: Flask, version: str, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _assess(app)[1] == version:
            return True
        time.sleep(RELOAD_S)
    return False


def _versions_for(app: Flask, seconds: float) -> set[str | None]:
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, version = _assess(app)
        assert status == 201
        seen.add(version)
        time.sleep(RELOAD_S / 2)
    return seen


def test_a_promotion_is_served_without_a_restart(app: Flask, root: Path) -> None:
    assert _assess(app) == (201, "0.1.0")
    set_alias(root, "production", "0.1.1")
    assert _served_within(app, "0.1.1")
    assert app.test_client().get("/v1/model").get_json()["version"] == "0.1.1"
    assert app.test_client().get("/readyz").get_json()["checks"]["model"].endswith(" 0.1.1")


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if str(r.msg).startswith("model reload refused")]


def _versions_until_refused(app: Flask, caplog: pytest.LogCaptureFixture) -> set[str | None]:
    """Versions served until the reload is refused (at most 10 s), then for 20 more checks."""
    seen: set[str | None] = set()
    deadline = time.monotonic() + 10.0
    while not _refusals(caplog) and time.monotonic() < deadline:
        seen |= _versions_for(app, RELOAD_S)
    return seen | _versions_for(app, 20 * RELOAD_S)


def test_a_corrupted_version_is_refused_once_and_the_old_one_keeps_serving(
        app: Flask, root: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = cds.load_model

    def counting_load(name: Any, **kwargs: Any) -> Any:
        loads.append(str(name))
        return real_load(name, **kwargs)

    assert _assess(app)[1] == "0.1.0"
    monkeypatch.setattr(cds, "load_model", counting_load)
    set_alias(root, "production", "0.1.2-corrupt")
    assert _versions_until_refused(app, caplog) == {"0.1.0"}
    assert loads == ["0.1.2-corrupt"]  # the failed registry state is not retried per request
    refused = _refusals(caplog)
    assert [(r.error, r.model_version) for r in refused] == [  # type: ignore[attr-defined]
        ("IntegrityError", "0.1.2-corrupt")]
    set_alias(root, "production", "0.1.1")  # a later registry change is tried again
    assert _served_within(app, "0.1.1")


def test_a_model_failing_the_golden_records_is_refused(
        app: Flask, root: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert _assess(app)[1] == "0.1.0"
    set_alias(root, "production", "0.1.3-misbehaves")
    assert _versions_until_refused(app, caplog) == {"0.1.0"}
    refused = _refusals(caplog)
    assert len(refused) == 1 and refused[0].reason == "golden"  # type: ignore[attr-defined]
    assert app.test_client().get("/readyz").get_json()["checks"]["model"].endswith(" 0.1.0")


def test_concurrent_requests_never_fail_while_the_alias_flips(app: Flask, root: Path) -> None:
    """8 threads keep assessing while the alias moves 0.1.1 -> 0.1.0 -> 0.1.1; each move is
    waited for until the clients see it (so every swap really happens under load)."""
    assert _assess(app)[1] == "0.1.0"
    results: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            results.append(_assess(app))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    swaps_seen = []
    try:
        for version in ("0.1.1", "0.1.0", "0.1.1"):
            start = len(results)
            set_alias(root, "production", version)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and (version, start) not in swaps_seen:
                if any(v == version for _, v in results[start:]):
                    swaps_seen.append((version, start))
                time.sleep(RELOAD_S)
        settled = len(results)
        time.sleep(4 * RELOAD_S)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert [v for v, _ in swaps_seen] == ["0.1.1", "0.1.0", "0.1.1"]
    assert len(results) > settled and all(status == 201 for status, _ in results)
    assert {v for _, v in results} == {"0.1.0", "0.1.1"}
    # once the last swap is seen, only in-flight requests may still name the old version
    assert {v for _, v in results[settled + len(threads):]} == {"0.1.1"}
