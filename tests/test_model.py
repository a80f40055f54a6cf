"""Model artefacts: verified before parsed, refused when tampered or from another contract."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

import cds
from cds.errors import IntegrityError, ModelUnavailable
from training.artefact import seal
from training.registry import set_alias


@pytest.fixture
def artefact(tiny_model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "gmed-driver" / tiny_model_dir.name
    shutil.copytree(tiny_model_dir, target)
    return target


def test_artefact_holds_native_model_json_and_manifest(tiny_model_dir: Path) -> None:
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert names == {"model.txt", "calibration.json", "metadata.json", "MODEL_CARD.md",
                     "model_facts.json", "reference.json", "manifest.json"}
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert (tiny_model_dir / "model.txt").read_text().startswith("tree")


def test_a_one_byte_change_is_refused(artefact: Path) -> None:
    model_file = artefact / "model.txt"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"model\.txt does not match its SHA-256"):
        cds.load_model(artefact)


def test_a_missing_manifest_is_refused(artefact: Path) -> None:
    (artefact / "manifest.json").unlink()
    with pytest.raises(IntegrityError, match=r"manifest\.json is missing"):
        cds.load_model(artefact)


def test_a_model_from_another_contract_is_refused(artefact: Path) -> None:
    meta_file = artefact / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["contract_hash"] = "0" * 64
    meta_file.write_text(json.dumps(meta))
    seal(artefact)
    with pytest.raises(ModelUnavailable, match="another version of the feature contract"):
        cds.load_model(artefact)


def test_aliases_resolve_through_the_registry(artefact: Path) -> None:
    root = artefact.parent.parent
    set_alias(root, "production", artefact.name)
    model = cds.load_model("production", root=root)
    assert model.version == artefact.name
    assert model.path == artefact
    with pytest.raises(ModelUnavailable):
        cds.load_model("nonexistent", root=root)


def test_probability_is_calibrated_raw_score_and_bands_follow_metadata(tiny_model: cds.Model) -> None:
    assert tiny_model.probability(0.0) == pytest.approx(
        1 / (1 + math.exp(-tiny_model.calibration["intercept"])))
    assert tiny_model.band(tiny_model.bands["high_from"]) == "high"
    assert tiny_model.band(tiny_model.bands["moderate_from"]) == "moderate"
    assert tiny_model.band(tiny_model.bands["moderate_from"] - 1e-9) == "low"
