"""The minimum sample size before fitting (Riley et al. BMJ 2020;368:m441, pmsampsize)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cds.features import MODEL_COLUMNS
from training.cli import main
from training.samplesize import (
    TooFewOutcomes,
    candidate_parameters,
    check_development,
    max_cox_snell,
    minimum_sample_size,
)
from training.simulate import simulate


def test_the_papers_worked_example() -> None:
    """pmsampsize's binary example (Riley et al. 2019 Stat Med Part II; BMJ 2020): 24 candidate
    parameters, prevalence 0.174, Cox-Snell R² 0.288 -> max R² 0.603, Nagelkerke 0.477;
    shrinkage criterion 623, optimism criterion 662, intercept criterion 221; final 662 with
    116 events, EPP 4.8."""
    s = minimum_sample_size(24, 0.174, r2_cox_snell=0.288)
    assert round(s.max_r2_cox_snell, 3) == 0.603 and round(s.nagelkerke, 3) == 0.477
    assert (s.n_shrinkage, s.n_optimism, s.n_intercept) == (623, 662, 221)
    assert s.n == 662 and s.events == 116 and round(s.events_per_parameter, 1) == 4.8


def test_intercept_criterion_is_the_precision_of_a_proportion() -> None:
    # (1.96 / 0.05)^2 * 0.5 * 0.5 = 384.16 -> 385
    assert minimum_sample_size(1, 0.5).n_intercept == 385


def test_default_anticipated_r2_is_nagelkerke_015() -> None:
    s = minimum_sample_size(10, 0.2)
    assert s.r2_cox_snell == pytest.approx(0.15 * max_cox_snell(0.2))
    assert s.nagelkerke == pytest.approx(0.15)


def test_more_parameters_need_more_rows() -> None:
    assert minimum_sample_size(30, 0.2).n > minimum_sample_size(10, 0.2).n


def test_parameters_come_from_the_contract() -> None:
    # at least one per model column; categories add k - 1 each
    assert candidate_parameters() >= len(MODEL_COLUMNS)


def test_too_few_events_are_refused_with_the_numbers_and_an_offer() -> None:
    y = np.r_[np.ones(41), np.zeros(271)]
    with pytest.raises(TooFewOutcomes) as e:
        check_development(y, what="clinic.csv")
    need = minimum_sample_size(candidate_parameters(), 41 / 312)
    message = str(e.value)
    assert f"312 rows, 41 events: at least {need.n} rows with {need.events} events" in message
    assert "cds recalibrate" in message and "Riley et al." in message


def test_enough_rows_pass_and_accept_small_records_the_shortfall() -> None:
    need = minimum_sample_size(candidate_parameters(), 0.25)
    y = np.r_[np.ones(need.n), np.zeros(3 * need.n)]
    assert check_development(y, what="x").n == need.n
    small = np.r_[np.ones(10), np.zeros(30)]
    assert check_development(small, what="x", accept_small=True).n > 40


def test_cli_train_below_the_minimum_is_refused_before_fitting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = simulate(800, 9)
    frame[frame["complaint"].notna()].to_csv(tmp_path / "clinic.csv", index=False)
    out = tmp_path / "m" / "gmed-driver" / "2.0.0"
    assert main(["train", "--data", str(tmp_path / "clinic.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "events are needed for a model of this size" in err and "fitting on" not in err
    assert "cds recalibrate" in err and not out.exists()


def test_cli_train_with_accept_small_sample_records_it(tmp_path: Path) -> None:
    frame = simulate(1500, 9)
    frame.to_parquet(tmp_path / "d.parquet")
    out = tmp_path / "m" / "gmed-driver" / "2.0.0"
    assert main(["train", "--data", str(tmp_path / "d.parquet"), "--out", str(out),
                 "--threads", "1", "--accept-small-sample"]) == 0
    size = json.loads((out / "metadata.json").read_text())["training_data"]["sample_size"]
    assert size["below_minimum_accepted"] is True and size["rows"] < size["n"]
    assert pd.notna(size["events"])


def test_recalibrating_on_few_outcomes_says_it_is_imprecise(tiny_model_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    import shutil

    model = tmp_path / "models" / "gmed-driver" / "0.0.1"
    shutil.copytree(tiny_model_dir, model)
    frame = simulate(400, 12)
    frame[frame["complaint"].notna()].head(120).to_csv(tmp_path / "few.csv", index=False)
    assert main(["recalibrate", "--model", str(model), "--data",
                 str(tmp_path / "few.csv"), "--version", "0.0.1-recal-few"]) == 0
    err = capsys.readouterr().err
    assert "are fewer than the" in err and "--method intercept needs fewer" in err
    meta = json.loads((model.parent / "0.0.1-recal-few" / "metadata.json").read_text())
    assert meta["recalibration"]["sample_size"]["rows"] < meta["recalibration"]["sample_size"]["n"]
