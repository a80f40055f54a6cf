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
from cds.features import MODEL_COLUMNS, contract_hash
from cds.model import (
    MODEL_FILE,
    REQUIRED_FILES,
    Model,
    load_model,
    sha256_file,
    verify_manifest,
)


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


# ------------------------------------------------------------------ provenance, each refusal's words

def _reseal(directory: Path, name: str) -> None:
    """Record a changed file's digest, as a careful forger would."""
    _write_manifest(directory, {**_manifest(directory), name: sha256_file(directory / name)})


def _edit_metadata(directory: Path, **changes: object) -> None:
    metadata = json.loads((directory / "metadata.json").read_text())
    for key, value in changes.items():
        if value is _DROP:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    (directory / "metadata.json").write_text(json.dumps(metadata))
    _reseal(directory, "metadata.json")


def _edit_model_text(directory: Path, old: str, new: str) -> None:
    text = (directory / MODEL_FILE).read_text()
    assert old in text
    (directory / MODEL_FILE).write_text(text.replace(old, new, 1))
    _reseal(directory, MODEL_FILE)


_DROP = object()


def _refusal(directory: Path) -> str:
    with pytest.raises(ModelUnavailable) as caught:
        load_model(directory)
    return str(caught.value)


def test_a_model_from_another_contract_is_refused_naming_both_hashes(artefact: Path) -> None:
    _edit_metadata(artefact, contract_hash="f" * 64)
    assert _refusal(artefact) == (
        f"gmed-driver/9.9.9: trained on another version of the feature contract ({'f' * 12}, "
        f"this code {contract_hash()[:12]}); retrain it")


@pytest.mark.parametrize("columns", [list(reversed(MODEL_COLUMNS)), _DROP])
def test_columns_in_another_order_or_absent_are_refused(artefact: Path, columns: object) -> None:
    _edit_metadata(artefact, columns=columns)
    assert _refusal(artefact) == "gmed-driver/9.9.9: column order differs from the contract"


@pytest.mark.parametrize("key", ["version", "bands"])
def test_metadata_without_version_or_bands_is_refused(artefact: Path, key: str) -> None:
    _edit_metadata(artefact, **{key: _DROP})
    assert _refusal(artefact) == f"gmed-driver/9.9.9: metadata.json lacks '{key}'"


@pytest.mark.parametrize(("lightgbm", "shown"), [("5.0.0", "5.0.0"), ("9" * 40, "9" * 20)])
def test_a_model_of_another_lightgbm_major_is_refused(artefact: Path, lightgbm: str,
                                                      shown: str) -> None:
    _edit_metadata(artefact, libraries={"lightgbm": lightgbm})
    assert _refusal(artefact) == (f"gmed-driver/9.9.9: written by LightGBM {shown}; this code "
                                  "reads models of LightGBM 4.x only")


@pytest.mark.parametrize("libraries", [{}, "lightgbm 4", None, {"lightgbm": "4.9.1"}])
def test_unrecorded_library_versions_do_not_refuse_a_model(artefact: Path, libraries: object) -> None:
    _edit_metadata(artefact, libraries=libraries)
    assert load_model(artefact).version


@pytest.mark.parametrize(("old", "new", "shown"), [
    ("version=v4", "version=v3", "v3"),
    ("version=v4", "version=x=v4", "x=v4"),  # the first '=' splits
    ("version=v4", "version=" + "v" * 30, "v" * 20),
    ("version=v4", "format=v4", "None"),  # no version line at all
])
def test_a_model_text_of_another_format_is_refused(artefact: Path, old: str, new: str,
                                                   shown: str) -> None:
    _edit_model_text(artefact, old + "\n", new + "\n")
    assert _refusal(artefact) == (f"gmed-driver/9.9.9: model.txt declares format version {shown}; "
                                  "this code reads v4")


@pytest.mark.parametrize(("content", "words"), [("{", "is not valid JSON"),
                                                ("[1]", "is not a JSON object")])
def test_unreadable_metadata_is_refused_in_words(artefact: Path, content: str, words: str) -> None:
    (artefact / "metadata.json").write_text(content)
    _reseal(artefact, "metadata.json")
    assert _refusal(artefact) == f"gmed-driver/9.9.9: metadata.json {words}"


def test_a_model_file_that_is_not_text_is_refused(artefact: Path) -> None:
    (artefact / MODEL_FILE).write_bytes(b"\xff\xfe" + (artefact / MODEL_FILE).read_bytes())
    _reseal(artefact, MODEL_FILE)
    assert _refusal(artefact) == "gmed-driver/9.9.9: model.txt is not text"


@pytest.mark.parametrize("calibration", [{"intercept": "0.1", "slope": 1.0},
                                         {"intercept": 0.1, "slope": float("inf")},
                                         {"intercept": 0.1}])
def test_a_calibration_without_finite_numbers_is_refused(artefact: Path, calibration: dict) -> None:
    (artefact / "calibration.json").write_text(json.dumps(calibration))
    _reseal(artefact, "calibration.json")
    assert _refusal(artefact) == "gmed-driver/9.9.9: calibration.json lacks intercept/slope"


def test_every_unlisted_required_file_is_named(artefact: Path) -> None:
    files = _manifest(artefact)
    del files["calibration.json"], files["metadata.json"]
    _write_manifest(artefact, files)
    with pytest.raises(IntegrityError) as caught:
        verify_manifest(artefact)
    assert str(caught.value) == ("gmed-driver/9.9.9: manifest does not list calibration.json, "
                                 "metadata.json")


def test_a_tampered_file_is_refused_in_words(artefact: Path) -> None:
    with (artefact / "metadata.json").open("a") as fh:
        fh.write(" ")
    with pytest.raises(IntegrityError) as caught:
        verify_manifest(artefact)
    assert str(caught.value) == ("gmed-driver/9.9.9: metadata.json does not match its SHA-256 in "
                                 "the manifest (corrupted or tampered); refusing to load")


@pytest.mark.parametrize("files", [{"model.txt": 1}, {"model.txt": None}])
def test_digests_that_are_not_text_are_refused_as_unreadable(artefact: Path, files: dict) -> None:
    (artefact / "manifest.json").write_text(json.dumps({"files": files}))
    with pytest.raises(IntegrityError) as caught:
        verify_manifest(artefact)
    assert str(caught.value) == ("gmed-driver/9.9.9: manifest.json is unreadable (files: not names "
                                 "to digests)")


def test_load_model_loads_the_production_alias_by_default(shipped_model: Model) -> None:
    assert load_model().version == shipped_model.version
