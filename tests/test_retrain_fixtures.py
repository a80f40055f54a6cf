"""Shared fixtures of the retraining tests: a models root with a production and a candidate
version trained on different small simulated cohorts, and labelled evaluation data.

Import the fixtures into a test module (``from .test_retrain_fixtures import retrain_root``).
Tests may add versions to ``retrain_root`` but never move its aliases (copy it first).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.pipeline import train
from training.registry import set_alias
from training.simulate import simulate


@pytest.fixture(scope="session")
def retrain_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("retrain-data")
    simulate(5000, 31).to_parquet(work / "train_a.parquet", index=False)
    simulate(5000, 32).to_parquet(work / "train_b.parquet", index=False)
    simulate(2500, 33).to_parquet(work / "eval.parquet", index=False)
    return work


@pytest.fixture(scope="session")
def retrain_root(retrain_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``models/`` with 1.0.0 (production) and 1.1.0 (candidate)."""
    root = tmp_path_factory.mktemp("retrain-models")
    for version, data in (("1.0.0", "train_a"), ("1.1.0", "train_b")):
        train(retrain_data / f"{data}.parquet", root / "gmed-driver" / version, seed=7,
              num_threads=1, reps=30)
    set_alias(root, "production", "1.0.0")
    set_alias(root, "candidate", "1.1.0")
    return root


def test_fixture_root_has_both_aliases(retrain_root: Path) -> None:
    registry = json.loads((retrain_root / "registry.json").read_text())
    assert registry["aliases"] == {"production": "1.0.0", "candidate": "1.1.0"}
