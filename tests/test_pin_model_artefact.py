"""Pins: a model artefact is verified against its manifest before anything is parsed, and the
manifest must list every file the model is built from (``REQUIRED_FILES``).

The attack the required-file rule stops: drop ``calibration.json`` from the manifest, then edit
it freely (every listed file still matches its hash), and the service serves probabilities of
the attacker's choosing from a "verified" model.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from cds.errors import IntegrityError, ModelUnavailable
from cds.model import MODEL_FILE, REQUIRED_FILES, load_model, sha256_file, verify_manifest


@pytest.fixture
def artefact(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model's sealed artefact (these tests tamper with it)."""
    copy = tmp_path / "gmed-driver" / "9.9.9"
    shutil.copytree(tiny_model_dir, copy)
    return copy


def _manifest(directory: Path) -> dict[str, str]:
    files: dict[str, str] = json.loads((directory / "manifest.json").read_text())["files"]
    return files


def _write_manifest(directory: Path, files: dict[str, str]) -> None:
    (directory / "manifest.json").write_text(json.dumps({"files": files}))


def test_the_required_files_are_the_model_its_calibration_and_its_metadata() -> None:
    assert set(REQUIRED_FILES) == {MODEL_FILE, "calibration.json", "metadata.json"}


def test_an_untouched_artefact_verifies_and_loads(artefact: Path) -> None:
    assert set(REQUIRED_FILES) <= set(verify_manifest(artefact))
    assert load_model(artefact).version


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_a_manifest_that_does_not_list_a_required_file_is_refused(artefact: Path, name: str) -> None:
    files = _manifest(artefact)
    del files[name]
    _write_manifest(artefact, files)
    with pytest.raises(IntegrityError, match=re.escape(f"manifest does not list {name}")):
        verify_manifest(artefact)
    with pytest.raises(IntegrityError):
        load_model(artefact)


def test_an_unlisted_calibration_cannot_be_swapped_in(artefact: Path) -> None:
    """The attack itself: unlist calibration.json, rewrite it; the load is refused."""
    files = _manifest(artefact)
    del files["calibration.json"]
    _write_manifest(artefact, files)
    (artefact / "calibration.json").write_text(json.dumps({"intercept": 9.0, "slope": 0.0}))
    with pytest.raises(IntegrityError, match=re.escape("calibration.json")):
        load_model(artefact)


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_a_listed_file_changed_after_sealing_is_refused(artefact: Path, name: str) -> None:
    with (artefact / name).open("a") as fh:
        fh.write("\n")
    with pytest.raises(IntegrityError, match=re.escape(f"{name} does not match its SHA-256")):
        verify_manifest(artefact)


@pytest.mark.parametrize("name", REQUIRED_FILES)
def test_a_listed_file_that_is_absent_is_refused(artefact: Path, name: str) -> None:
    (artefact / name).unlink()
    with pytest.raises(IntegrityError, match=re.escape(f"{name} listed in the manifest is missing")):
        verify_manifest(artefact)


def test_a_manifest_entry_outside_the_artefact_is_refused(artefact: Path, tmp_path: Path) -> None:
    """A listed ``../x`` is not followed, even when the file there matches its digest."""
    outside = tmp_path / "gmed-driver" / "outside.txt"
    outside.write_text("x")
    files = {**_manifest(artefact), "../outside.txt": sha256_file(outside)}
    _write_manifest(artefact, files)
    with pytest.raises(IntegrityError, match=re.escape("listed in the manifest is missing")):
        verify_manifest(artefact)


@pytest.mark.parametrize("content", ["", "{", '{"files": 3}', '{"files": ["model.txt"]}',
                                     '{"files": {"model.txt": 1}}', '{"nofiles": {}}', "[]"])
def test_an_unreadable_manifest_is_refused(artefact: Path, content: str) -> None:
    (artefact / "manifest.json").write_text(content)
    with pytest.raises(IntegrityError, match=re.escape("manifest")):
        verify_manifest(artefact)


def test_no_manifest_is_refused(artefact: Path) -> None:
    (artefact / "manifest.json").unlink()
    with pytest.raises(IntegrityError, match=re.escape("manifest.json is missing")):
        verify_manifest(artefact)


def test_the_refusal_names_the_artefact_not_its_absolute_path(artefact: Path) -> None:
    files = _manifest(artefact)
    del files[MODEL_FILE]
    _write_manifest(artefact, files)
    with pytest.raises(ModelUnavailable) as caught:
        load_model(artefact)
    assert str(caught.value).startswith("gmed-driver/9.9.9:")
    assert str(artefact.parent.parent) not in str(caught.value)
