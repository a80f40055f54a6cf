"""A registry you can audit: rollback walks back along the history, the history is readable,
``models list`` says which data each figure was measured on, and the gate judges by a versioned
plan with paired bootstrap CIs, printing every rule and the report's path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from training.change_control import PLAN_FILE, paired_differences
from training.cli import main
from training.gate import Margins, check
from training.registry import RegistryError, lineage, read_alias, read_registry, rollback, set_alias

from .test_retrain_fixtures import retrain_data, retrain_root

__all__ = ["retrain_data", "retrain_root"]


@pytest.fixture
def root(retrain_root: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "models"
    shutil.copytree(retrain_root, copy)
    shutil.copytree(copy / "gmed-driver" / "1.1.0", copy / "gmed-driver" / "1.2.0")
    return copy


def test_issue13_rollback_twice_walks_back_never_toggles(root: Path) -> None:
    set_alias(root, "production", "1.1.0", forced=True)
    set_alias(root, "production", "1.2.0", forced=True)
    assert rollback(root, "production")["aliases"]["production"] == "1.1.0"
    assert rollback(root, "production")["aliases"]["production"] == "1.0.0"
    with pytest.raises(RegistryError, match="no earlier version"):
        rollback(root, "production")
    assert read_alias(root, "production") == "1.0.0"


def test_lineage_replays_promotions_and_rollbacks() -> None:
    history = [{"alias": "production", "action": "promote", "version": v} for v in "ABC"]
    history.append({"alias": "production", "action": "rollback", "version": "B"})
    history.append({"alias": "candidate", "action": "promote", "version": "Z"})
    assert lineage(history, "production") == ["A", "B"]


def test_history_shows_who_when_from_to_gate_and_reason(root: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "promote", "1.1.0", "--root", str(root), "--force",
                 "--reason", "site go-live"]) == 0
    assert main(["models", "rollback", "--root", str(root), "--reason", "alarm"]) == 0
    capsys.readouterr()
    assert main(["models", "history", "--root", str(root), "--alias", "production"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "promote  production: 1.0.0 -> 1.1.0" in lines[-2] and "[forced, no gate]" in lines[-2]
    assert "reason: site go-live" in lines[-2]
    assert "rollback  production: 1.1.0 -> 1.0.0" in lines[-1] and "reason: alarm" in lines[-1]
    assert all(" by " in line for line in lines)


def test_list_says_which_data_each_figure_was_measured_on(root: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "AUROC" in out and " on [a]" in out and "figures measured on:" in out
    assert "internal validation split" in out


def _figures(auroc: float) -> dict:
    return {"overall": {"auroc": auroc}, "calibration": {"intercept": 0.0, "slope": 1.0},
            "subgroups": {}}


@pytest.mark.parametrize(("low", "passes"), [(-0.015, True), (-0.025, False)])
def test_gate_auroc_rule_is_the_paired_ci_lower_bound(low: float, passes: bool) -> None:
    paired = {"auroc_difference": 0.0, "auroc_difference_ci95": [low, 0.01],
              "calibration_gap_difference_pp": 0.0, "calibration_gap_difference_ci95": [-1, 1]}
    verdict = check(_figures(0.75), _figures(0.75), Margins(auroc=0.02), paired)
    assert verdict["passed"] is passes
    assert any(line.startswith("pass: " if passes else "FAIL: ") and "paired 95% CI" in line
               for line in verdict["checks"])


def test_paired_differences_of_a_model_with_itself_are_zero() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400).astype(float)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 400), 0, 1)
    d = paired_differences(y, p, p, reps=50)
    assert d["auroc_difference"] == 0 and d["auroc_difference_ci95"] == [0, 0]
    better = paired_differences(y, np.clip(p + 0.3 * y, 0, 1), p, reps=50)
    assert better["auroc_difference_ci95"][0] > 0


def test_promote_prints_every_rule_the_plan_and_the_report(root: Path, retrain_data: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    plan = json.loads((Path(__file__).parent.parent / "models" / PLAN_FILE).read_text())
    plan["margins"].update(auroc=0.5, calibration_intercept=5, calibration_slope=5,
                           subgroup_auroc=0.5, subgroup_calibration_pp=50)
    plan["version"] = "9.9.9-test"
    (root / PLAN_FILE).write_text(json.dumps(plan))
    assert main(["models", "promote", "1.1.0", "--root", str(root), "--data",
                 str(retrain_data / "eval.parquet"), "--reps", "20", "--margin-slope", "4"]) == 0
    err = capsys.readouterr().err
    assert "gate passed:" in err and "pass: AUROC difference" in err and "paired 95% CI" in err
    assert "change control plan 9.9.9-test" in err
    assert "deviations recorded: {'calibration_slope': 4.0}" in err
    report = root / "reports" / "1.1.0-vs-1.0.0.html"
    assert f"report: {report}" in err and report.is_file()
    event = read_registry(root)["history"][-1]
    assert event["plan"]["version"] == "9.9.9-test" and event["report"] == str(report)
    assert event["gate"]["margins"]["auroc"] == 0.5 and event["deviations"] == {"calibration_slope": 4.0}


def test_shipped_plan_margins_are_the_gate_defaults() -> None:
    from dataclasses import asdict

    plan = json.loads((Path(__file__).parent.parent / "models" / PLAN_FILE).read_text())
    assert plan["margins"] == asdict(Margins())


def test_issue13_recalibrate_advice_is_a_promotion_the_gate_accepts(
        root: Path, retrain_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(retrain_data / "eval.parquet")
    assert main(["recalibrate", "--model", "production", "--data", data, "--root", str(root),
                 "--version", "1.0.0-recal"]) == 0
    err = capsys.readouterr().err
    assert "cds models promote 1.0.0-recal --alias production --data" in err
    plan = {"version": "t", "margins": {"auroc": 0.5, "calibration_intercept": 5,
                                        "calibration_slope": 5, "subgroup_auroc": 0.5,
                                        "subgroup_calibration_pp": 50}}
    (root / PLAN_FILE).write_text(json.dumps(plan))
    assert main(["models", "promote", "1.0.0-recal", "--root", str(root), "--data", data,
                 "--reps", "20"]) == 0
    err = capsys.readouterr().err
    assert "gate passed" in err and "recalibrated on: its figures are apparent" in err
