"""Shared fixtures: a tiny model trained in seconds on a small simulated cohort, and the shipped one.

The tiny model goes through the real pipeline (simulate -> train -> sealed artefact -> verified
load), so unit tests exercise exactly what ships, only smaller.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import cds
from cds.model import Model

pytest_plugins = ["tests.service_fixtures", "tests.log_scan", "tests.postgres_server"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TINY_MODEL_ENV = "GMED_TEST_TINY_MODEL"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained once per session; ``GMED_TEST_TINY_MODEL`` names one built already, for runs that
    start many sessions (``bench/mutation.py`` builds it once with :func:`build_tiny_model`)."""
    prebuilt = os.environ.get(TINY_MODEL_ENV)
    if prebuilt:
        return Path(prebuilt)
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def build_tiny_model(work: Path) -> Path:
    """The tiny model: 6,000 simulated patients to train, 2,000 to calibrate, seed 3."""
    from training.pipeline import train
    from training.simulate import simulate

    simulate(6000, 11).to_parquet(work / "train.parquet", index=False)
    simulate(2000, 12).to_parquet(work / "eval.parquet", index=False)
    return train(work / "train.parquet", work / "models" / "gmed-driver" / "0.0.1-test",
                 eval_data=work / "eval.parquet", seed=3, num_threads=1)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> Model:
    return cds.load_model(tiny_model_dir)


@pytest.fixture(scope="session")
def shipped_model() -> Model:
    return cds.load_model("production")


def load_example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


@pytest.fixture
def runner_pfp() -> dict[str, Any]:
    return load_example("runner_pfp_hip_driven")
