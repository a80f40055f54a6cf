"""``cds evaluate``: the HTML report and the figures behind it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.cli import main
from training.curves import age_band, calibration_bins, decision_curve, net_benefit, subgroup_table
from training.report import evaluate

from .test_retrain_fixtures import retrain_data, retrain_root

__all__ = ["retrain_data", "retrain_root"]


def test_net_benefit_of_a_perfect_model_is_the_prevalence_at_any_threshold() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], float)
    assert net_benefit(y, y.copy(), np.array([0.1, 0.3, 0.5])) == pytest.approx([0.2, 0.2, 0.2])


def test_treat_all_net_benefit_falls_to_zero_at_the_prevalence_odds() -> None:
    y = np.r_[np.ones(20), np.zeros(80)]
    curve = decision_curve(y, np.full(100, 0.2))
    t = curve["thresholds"].index(0.2)
    assert curve["treat_all"][t] == pytest.approx(0.0) and curve["treat_none"][t] == 0.0
    assert min(curve["thresholds"]) == 0.05 and max(curve["thresholds"]) == 0.5


def test_calibration_bins_of_a_calibrated_model_straddle_the_diagonal() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.6, 20000)
    y = (rng.random(20000) < p).astype(float)
    c = calibration_bins(y, p)
    assert abs(c["intercept"]) < 0.1 and abs(c["slope"] - 1) < 0.1
    assert sum(b["lo"] <= b["predicted"] <= b["hi"] for b in c["bins"]) >= 8


def test_age_bands_cover_adolescents_and_adults() -> None:
    assert list(age_band(pd.Series([12, 17, 18, 29, 30, 59, 60, 90]))) == [
        "12-17", "12-17", "18-29", "18-29", "30-44", "45-59", "60+", "60+"]


def test_subgroup_cis_bracket_the_estimate_and_small_groups_are_flagged() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.6, 3000)
    y = (rng.random(3000) < p).astype(float)
    groups = {"sex": np.where(np.arange(3000) < 2980, "female", "male")}
    table = subgroup_table(y, p, groups, reps=50)
    female = table["sex"]["female"]
    assert female["auroc_ci95"][0] <= female["auroc"] <= female["auroc_ci95"][1]
    assert table["sex"]["male"] == {"n": 20, "too_small": True}


def test_report_is_self_contained_with_every_section(retrain_root: Path, retrain_data: Path,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = evaluate("candidate", retrain_data / "eval.parquet", out, against="production",
                      reps=20, root=retrain_root)
    text = out.read_text()
    assert result["versions"] == {"candidate": "1.1.0", "production": "1.0.0"}
    for heading in ("ROC", "precision-recall", "calibration", "decision curve", "SHAP beeswarm",
                    "dependence:", "Subgroups"):
        assert heading in text
    assert len(re.findall(r"src='data:image/png;base64,", text)) == 9
    assert not re.search(r"(src|href)=['\"]?https?://", text)
    for dim in ("sex: female", "age_band: 30-44", "complaint: pfp", "care_setting: exam"):
        assert dim in text
    figures = result["figures"]
    assert figures["candidate"]["overall"]["n"] == figures["production"]["overall"]["n"]
    # simulated data carry the simulator's own probabilities: the ceiling is reported beside
    assert figures["ceiling"]["overall"]["n"] == figures["candidate"]["overall"]["n"]
    assert "ceiling: AUROC (95% CI)" in text


def test_cli_evaluate_prints_both_models(retrain_root: Path, retrain_data: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["evaluate", "--model", "1.1.0", "--data", str(retrain_data / "eval.parquet"),
                 "--out", str(out), "--reps", "10", "--root", str(retrain_root)]) == 0
    printed = capsys.readouterr().out
    assert "candidate 1.1.0: AUROC" in printed and "production 1.0.0: AUROC" in printed
    assert "ceiling (the simulator's own probabilities): AUROC" in printed
    for row in ("care_setting: intake |", "care_setting: exam |", "complaint: pfp |",
                "complaint: lbp |"):
        assert row in printed  # by care setting and complaint, each model beside the ceiling
    assert out.is_file()


def test_fast_auroc_equals_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    from training.evaluate import auroc

    rng = np.random.default_rng(4)
    y = (rng.random(500) < 0.3).astype(float)
    p = np.round(rng.random(500), 1) + 0.1 * y
    assert auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
