"""Shared fixtures: a tiny model trained in seconds on a small simulated cohort, and the shipped one.

The tiny model goes through the real pipeline (simulate -> train -> sealed artefact -> verified
load), so unit tests exercise exactly what ships, only smaller.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import cds
from cds.model import Model

pytest_plugins = ["tests.service_fixtures", "tests.log_scan", "tests.postgres_server"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.pipeline import train
    from training.simulate import simulate

    work = tmp_path_factory.mktemp("tiny")
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
