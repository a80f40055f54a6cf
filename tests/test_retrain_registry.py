"""``cds models list | promote | rollback`` and the promotion gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from training.cli import main
from training.gate import Margins, check
from training.registry import RegistryError, alias_stamp, read_alias, read_registry, rollback

from .test_retrain_fixtures import retrain_data, retrain_root

__all__ = ["retrain_data", "retrain_root"]


@pytest.fixture
def root(retrain_root: Path, tmp_path: Path) -> Path:
    """A private copy of the shared models root (these tests move aliases)."""
    copy = tmp_path / "models"
    shutil.copytree(retrain_root, copy)
    return copy


def _figures(auroc: float, intercept: float = 0.0, slope: float = 1.0,
             female_auroc: float = 0.75, female_gap: float = 0.0) -> dict:
    group = {"n": 500, "auroc": female_auroc, "observed_minus_expected_pp": female_gap}
    return {"overall": {"auroc": auroc}, "calibration": {"intercept": intercept, "slope": slope},
            "subgroups": {"sex": {"female": group, "male": {"n": 20, "too_small": True}}}}


def test_gate_passes_a_candidate_within_the_margins() -> None:
    assert check(_figures(0.74), _figures(0.75))["passed"]


@pytest.mark.parametrize(("candidate", "words"), [
    (_figures(0.70), "AUROC 0.700 < production"),
    (_figures(0.75, intercept=0.3), "calibration intercept"),
    (_figures(0.75, slope=0.7), "calibration slope"),
    (_figures(0.75, female_auroc=0.65), "sex=female: AUROC"),
    (_figures(0.75, female_gap=-7.0), "sex=female: |observed - expected|"),
])
def test_gate_fails_a_candidate_worse_beyond_a_margin(candidate: dict, words: str) -> None:
    verdict = check(candidate, _figures(0.75))
    assert not verdict["passed"] and any(words in f for f in verdict["failures"])


def test_margins_are_configurable() -> None:
    assert check(_figures(0.70), _figures(0.75), Margins(auroc=0.06))["passed"]


def test_promote_without_data_is_refused(root: Path) -> None:
    with pytest.raises(RegistryError, match="needs --data"):
        from training.gate import promote

        promote(root, "1.1.0")
    assert read_alias(root, "production") == "1.0.0"


def test_a_failing_candidate_is_not_promoted_and_force_is_recorded(
        root: Path, retrain_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["models", "promote", "1.1.0", "--root", str(root), "--data",
            str(retrain_data / "eval.parquet"), "--reps", "20", "--margin-auroc", "-1"]
    assert main(args) == 1
    assert "gate failed" in capsys.readouterr().err
    assert read_alias(root, "production") == "1.0.0"
    assert main([*args, "--force", "--reason", "test"]) == 0
    event = read_registry(root)["history"][-1]
    assert event["forced"] is True and event["gate"]["passed"] is False
    assert event["previous"] == "1.0.0" and event["reason"] == "test" and event["data_sha256"]
    assert (root / "reports" / "1.1.0-vs-1.0.0.html").is_file()


def test_a_passing_candidate_is_promoted_then_rolled_back(root: Path, retrain_data: Path) -> None:
    stamp = alias_stamp(root)
    assert main(["models", "promote", "1.1.0", "--root", str(root), "--data",
                 str(retrain_data / "eval.parquet"), "--reps", "20",
                 "--margin-auroc", "0.5", "--margin-subgroup-auroc", "0.5",
                 "--margin-intercept", "5", "--margin-slope", "5",
                 "--margin-subgroup-pp", "50"]) == 0
    assert read_alias(root, "production") == "1.1.0" and alias_stamp(root) != stamp
    assert read_registry(root)["history"][-1]["gate"]["passed"] is True
    assert main(["models", "rollback", "--root", str(root)]) == 0
    assert read_alias(root, "production") == "1.0.0"
    assert read_registry(root)["history"][-1]["action"] == "rollback"


def test_rollback_with_no_earlier_version_is_an_error(tmp_path: Path, retrain_root: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(retrain_root / "gmed-driver", root / "gmed-driver")
    from training.registry import set_alias

    set_alias(root, "production", "1.0.0")
    with pytest.raises(RegistryError, match="no earlier version"):
        rollback(root, "production")


def test_list_shows_aliases_and_parents(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--root", str(root), "--json"]) == 0
    rows = {r["version"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["1.0.0"]["aliases"] == ["production"] and rows["1.1.0"]["aliases"] == ["candidate"]
    assert main(["models", "list", "--root", str(root)]) == 0
    assert "1.0.0  [production]  AUROC" in capsys.readouterr().out
