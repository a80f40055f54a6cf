"""Faulty model artefacts: refused with an error naming the problem, at start and on hot reload.

Each fault is applied to a sealed copy of the tiny model: one byte changed in the model file or
in the metadata (after sealing, so the manifest catches it), a listed file or the whole version
missing, another contract version, a LightGBM major version or text-format version this code was
not written for, a model file that is not a LightGBM model (the last three re-sealed, so only
the content check can catch them).

At start the service is not ready: ``/readyz`` is 503 and names the artefact and the problem
(never an absolute path), every model route answers 503 with a clear error (never 500). On hot
reload the refused version never serves: the old model keeps answering and ``/readyz`` stays
ready on the old version, saying why the move was refused. (A corrupted version and one failing
the golden records are also covered, with their log lines, by ``test_service_reload``.)
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import cds
from cds.errors import ModelUnavailable
from cds.model import MODEL_ID
from training.artefact import seal
from training.registry import set_alias

from .conftest import load_example
from .service_fixtures import hook_call

RELOAD_S = 0.05
DEV = {"ENVIRONMENT": "development", "PSEUDONYM_SECRET": "faults-test-secret", "AUTH": "off"}


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_metadata(directory: Path, **changes: Any) -> None:
    meta = json.loads((directory / "metadata.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            meta[key] = {**meta.get(key, {}), **value}
        else:
            meta[key] = value
    (directory / "metadata.json").write_text(json.dumps(meta))
    seal(directory)


def _rewrite_model(directory: Path, old: str, new: str) -> None:
    text = (directory / "model.txt").read_text()
    assert old in text
    (directory / "model.txt").write_text(text.replace(old, new, 1))
    seal(directory)


# name -> (how to break a sealed artefact, what the refusal must say)
FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "model-file-one-byte": (lambda d: _flip_byte(d / "model.txt"),
                            r"model\.txt does not match its SHA-256"),
    "metadata-one-byte": (lambda d: _flip_byte(d / "metadata.json"),
                          r"metadata\.json does not match its SHA-256"),
    "model-file-missing": (lambda d: (d / "model.txt").unlink(),
                           r"model\.txt listed in the manifest is missing"),
    "manifest-missing": (lambda d: (d / "manifest.json").unlink(), r"manifest\.json is missing"),
    "version-missing": (lambda d: shutil.rmtree(d), r"No model '0\.9\.9'"),
    "other-contract": (lambda d: _edit_metadata(d, contract_hash="0" * 64),
                       r"another version of the feature contract \(000000000000"),
    "unknown-lightgbm": (lambda d: _edit_metadata(d, libraries={"lightgbm": "9.1.0"}),
                         r"written by LightGBM 9\.1\.0; this code reads models of LightGBM 4\.x"),
    "unknown-format": (lambda d: _rewrite_model(d, "version=v4", "version=v9"),
                       r"model\.txt declares format version v9; this code reads v4"),
    "not-a-lightgbm-model": (lambda d: _rewrite_model(d, "\nnum_leaves=", "\nnum_leaves=x"),
                             r"model\.txt is not a LightGBM model this version can read"),
}


def _copy(source: Path, root: Path, version: str) -> Path:
    """A sealed copy of ``source`` as ``root/gmed-driver/<version>`` (metadata says the version)."""
    target = root / MODEL_ID / version
    shutil.copytree(source, target)
    _edit_metadata(target, version=version)
    return target


@pytest.fixture
def root(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models directory: 0.1.0 good (the production alias), 0.9.9 to be broken."""
    models = tmp_path / "models"
    _copy(tiny_model_dir, models, "0.1.0")
    _copy(tiny_model_dir, models, "0.9.9")
    set_alias(models, "production", "0.1.0")
    monkeypatch.setenv("GMED_MODELS_DIR", str(models))
    return models


def _assess(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().post("/v1/assessments", json=load_example("runner_pfp_hip_driven"))
    return response.status_code, response.get_json() or {}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_load_model_refuses_the_fault_naming_it(fault: str, root: Path) -> None:
    damage, reason = FAULTS[fault]
    damage(root / MODEL_ID / "0.9.9")
    with pytest.raises(ModelUnavailable, match=reason) as refused:
        cds.load_model("0.9.9", root=root)
    assert str(root) not in str(refused.value)
    assert cds.load_model("0.1.0", root=root).version == "0.1.0"  # the good copy still loads


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_at_start_the_service_is_not_ready_and_answers_503_never_500(
        fault: str, root: Path, make_app: Callable[..., Flask]) -> None:
    damage, reason = FAULTS[fault]
    damage(root / MODEL_ID / "0.9.9")
    app = make_app(MODEL="0.9.9", **DEV)
    client = app.test_client()
    for _ in range(2):  # the first probe loads and fails; the second is answered from memory
        ready = client.get("/readyz")
        body = ready.get_json()
        assert ready.status_code == 503 and body["status"] == "not-ready"
        assert body["checks"]["model"] == "unavailable" and body["checks"]["store"] == "ok"
        assert re.search(reason, body["reasons"]["model"]), body["reasons"]
        assert str(root) not in ready.get_data(as_text=True)
    status, answer = _assess(app)
    assert status == 503
    assert answer["error"]["code"] in ("integrity", "model-unavailable")
    assert answer["error"]["message"] == "The service is not ready; try again later"
    hook = client.post("/cds-services/gmed-driver", json=hook_call())
    assert hook.status_code == 503
    outcome = hook.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "transient"
    assert client.get("/v1/model").status_code == 503
    assert client.get("/healthz").status_code == 200  # alive, only not ready


def _refusal(app: Flask, seconds: float = 15.0) -> dict[str, Any]:
    """``/readyz`` once it reports the refused alias move (generous bound: catches a hang)."""
    client = app.test_client()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _assess(app)  # requests are what trigger the registry check
        body: dict[str, Any] = client.get("/readyz").get_json()
        if "model_reload_refused" in body.get("reasons", {}):
            return body
        time.sleep(RELOAD_S)
    pytest.fail("the refused reload was never reported")


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_on_reload_the_fault_is_refused_and_the_old_model_keeps_serving(
        fault: str, root: Path, make_app: Callable[..., Flask]) -> None:
    app = make_app(MODEL="production", MODEL_RELOAD_INTERVAL=RELOAD_S, **DEV)
    status, answer = _assess(app)
    assert status == 201 and answer["model"]["version"] == "0.1.0"
    damage, reason = FAULTS[fault]
    damage(root / MODEL_ID / "0.9.9")
    _write_alias(root, "0.9.9")
    body = _refusal(app)
    assert body["status"] == "ready" and body["checks"]["model"] == "gmed-driver 0.1.0"
    refused = body["reasons"]["model_reload_refused"]
    assert refused.startswith("0.9.9: ") and re.search(reason, refused), refused
    for _ in range(5):
        status, answer = _assess(app)
        assert status == 201 and answer["model"]["version"] == "0.1.0"
    assert app.test_client().get("/v1/model").get_json()["version"] == "0.1.0"


def _write_alias(root: Path, version: str) -> None:
    """Point ``production`` at ``version`` without the promotion gate (a broken one is the point)."""
    registry = json.loads((root / "registry.json").read_text())
    registry["aliases"]["production"] = version
    (root / "registry.json").write_text(json.dumps(registry))
