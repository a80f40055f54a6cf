"""gunicorn preloads (issue 16, target 7): the master loads the verified model and builds the UCUM
registry before it forks, so a worker is ready within a second; a master that cannot load the
model still starts (its workers report not ready, as before)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from flask import Flask

import cds.units
from service.serving.model_host import host


def _conf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    """The gunicorn settings module, imported without leaking its environment into the tests."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    return importlib.import_module("service.gunicorn_conf")


def _master(app: Flask) -> SimpleNamespace:
    return SimpleNamespace(app=SimpleNamespace(wsgi=lambda: app), log=logging.getLogger("test"))


def test_the_master_loads_the_model_and_the_unit_registry_before_fork(
        make_app: Callable[..., Flask], tiny_model_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    conf = _conf(monkeypatch, tmp_path)
    built: list[bool] = []
    monkeypatch.setattr(cds.units, "warm", lambda: built.append(True))
    app = make_app(MODEL=str(tiny_model_dir))
    assert conf.preload_app is True
    with app.app_context():
        assert host().loaded is None
    conf.when_ready(_master(app))
    assert built == [True]
    with app.app_context():
        assert host().loaded is not None


def test_a_master_without_a_loadable_model_still_starts(
        make_app: Callable[..., Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    conf = _conf(monkeypatch, tmp_path)
    monkeypatch.setattr(cds.units, "warm", lambda: None)
    app = make_app(MODEL=str(tmp_path / "no-such-model"))
    with caplog.at_level(logging.WARNING, logger="test"):
        conf.when_ready(_master(app))
    assert "not preloaded" in caplog.text
    with app.app_context():
        assert host().loaded is None


def test_the_master_explains_once_before_fork_so_a_compiled_kernel_loads_there(
        make_app: Callable[..., Flask], tiny_model_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A deep site model's TreeSHAP kernel (numba) loads on its first explanation: the master
    makes that explanation, so the workers inherit the kernel instead of each loading it."""
    import numpy as np

    from cds.features import MODEL_COLUMNS
    from cds.model import Model

    conf = _conf(monkeypatch, tmp_path)
    monkeypatch.setattr(cds.units, "warm", lambda: None)
    shapes: list[tuple[int, ...]] = []
    real = Model.contributions

    def counted(self: Model, X: np.ndarray) -> np.ndarray:
        shapes.append(np.shape(X))
        return real(self, X)

    monkeypatch.setattr(Model, "contributions", counted)
    conf.when_ready(_master(make_app(MODEL=str(tiny_model_dir))))
    assert shapes == [(1, len(MODEL_COLUMNS))]
