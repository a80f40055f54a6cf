"""``cds recalibrate``: a new version whose only model change is its calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cds
from cds.errors import UserError
from cds.model import sha256_file, verify_manifest
from training.calibration import calibration_intercept_slope
from training.cli import main
from training.dataset import load
from training.recalibrate import recalibrate

from .test_retrain_fixtures import retrain_data, retrain_root

__all__ = ["retrain_data", "retrain_root"]


@pytest.fixture(scope="module")
def shifted_site(retrain_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site where the outcome is rarer: two thirds of the positive rows are dropped."""
    frame = pd.read_parquet(retrain_data / "eval.parquet")
    positives = frame.index[frame["hip_driver"] == 1]
    rng = np.random.default_rng(0)
    frame = frame.drop(index=rng.choice(positives, 2 * len(positives) // 3, replace=False))
    path = tmp_path_factory.mktemp("site") / "site.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_only_the_calibration_changes_and_the_parent_is_recorded(retrain_root: Path,
                                                                 shifted_site: Path) -> None:
    parent = cds.load_model("production", root=retrain_root)
    out = recalibrate("production", shifted_site, version="1.0.0-site", root=retrain_root, reps=20)
    child = cds.load_model(out)
    assert sha256_file(out / "model.txt") == sha256_file(parent.path / "model.txt")
    assert child.calibration != parent.calibration
    assert set(verify_manifest(out)) == set(verify_manifest(parent.path))
    meta = child.metadata
    assert meta["parent_version"] == "1.0.0" and meta["version"] == "1.0.0-site"
    assert meta["recalibration"]["data"]["sha256"] == load(shifted_site).sha256
    assert "recalibrated on local outcomes" in child.trained_on
    assert "Recalibrated from version 1.0.0" in (out / "MODEL_CARD.md").read_text()
    for key in ("columns", "contract_hash", "population", "bands", "params", "trees"):
        assert meta[key] == parent.metadata[key]


def test_recalibration_fixes_calibration_in_the_large_at_the_new_site(retrain_root: Path,
                                                                       shifted_site: Path) -> None:
    ds = load(shifted_site)
    parent = cds.load_model("production", root=retrain_root)
    before, _ = calibration_intercept_slope(parent.probability(parent.predict_raw(ds.X)), ds.y)
    out = recalibrate("production", shifted_site, method="intercept", version="1.0.0-itl",
                      root=retrain_root, reps=20)
    child = cds.load_model(out)
    after, _ = calibration_intercept_slope(child.probability(child.predict_raw(ds.X)), ds.y)
    assert before < -0.4 and abs(after) < 0.02
    assert child.calibration["slope"] == parent.calibration["slope"]
    assert json.loads((out / "calibration.json").read_text())["method"] == "intercept"


def test_an_existing_version_is_never_overwritten(retrain_root: Path, shifted_site: Path) -> None:
    with pytest.raises(UserError, match="exists; choose another --version"):
        recalibrate("production", shifted_site, version="1.1.0", root=retrain_root)


def test_cli_recalibrate_prints_the_new_version(retrain_root: Path, shifted_site: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recalibrate", "--model", "candidate", "--data", str(shifted_site),
                 "--root", str(retrain_root)]) == 0
    version = capsys.readouterr().out.strip()
    assert version.startswith("1.1.0-recal-")
    assert cds.load_model(version, root=retrain_root).metadata["parent_version"] == "1.1.0"
