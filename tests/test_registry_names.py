"""Issue #18, finding 11: alias and version names are one safe path component, checked on every
read and write, so no alias can lead outside ``models/gmed-driver/``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cds.model import load_model
from cds.registry import InvalidName, check_name, read_alias
from training.cli import main
from training.registry import read_registry, set_alias


@pytest.fixture
def roots(tmp_path: Path, tiny_model_dir: Path) -> tuple[Path, Path]:
    """A models root three levels down, with production set, and a real artefact at
    ``root/gmed-driver/../../../x`` (outside the root)."""
    root = tmp_path / "a" / "b" / "models"
    shutil.copytree(tiny_model_dir, root / "gmed-driver" / "1.0.0")
    set_alias(root, "production", "1.0.0")
    outside = tmp_path / "a" / "x"
    shutil.copytree(tiny_model_dir, outside)
    assert (root / "gmed-driver" / "../../../x").resolve() == outside.resolve()
    return root, outside


@pytest.mark.parametrize("name", ["../../../x", "..", ".", "a/b", "/etc", "x\\y", "", "-rf",
                                  ".hidden", "a" * 65, "1.0.0\n"])
def test_path_like_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        check_name(name)


@pytest.mark.parametrize("name", ["1.0.0", "production", "0.1.0-recal-1a2b3c4d", "shadow_2"])
def test_ordinary_names_pass(name: str) -> None:
    assert check_name(name) == name


def test_promote_a_path_like_version_exits_2_and_writes_no_alias(
        roots: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = roots
    before = (root / "registry.json").read_text()
    assert main(["models", "promote", "../../../x", "--alias", "candidate",
                 "--root", str(root)]) == 2
    assert "not a valid name" in capsys.readouterr().err
    assert (root / "registry.json").read_text() == before


def test_a_path_like_alias_is_refused_on_write_and_read(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    with pytest.raises(InvalidName):
        set_alias(root, "../production", "1.0.0")
    with pytest.raises(InvalidName):
        read_alias(root, "../production")


def test_load_model_refuses_a_registry_alias_pointing_outside(roots: tuple[Path, Path]) -> None:
    root, outside = roots
    registry = read_registry(root)
    registry["aliases"]["production"] = "../../../x"  # a hand-edited or old registry
    (root / "registry.json").write_text(json.dumps(registry))
    with pytest.raises(InvalidName, match="points at version"):
        load_model("production", root=root)
    assert load_model(outside).version  # a directory given as a path still loads, on purpose
