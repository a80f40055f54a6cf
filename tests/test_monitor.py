"""``cds monitor``: drift (PSI), out-of-population rate, predictions, observed vs expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.cli import main
from training.monitor import PSI_ALARM, monitor, psi, wilson
from training.schema import LABEL
from training.simulate import simulate


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three months of a site: BMI shifted by 12 kg/m² in March; outcomes in January and, in
    March, every outcome recorded as the hip (the model now under-predicts there)."""
    frame = simulate(3000, 21)
    frame = frame[frame["complaint"].notna()].reset_index(drop=True)
    frame["recorded_at"] = [f"2026-0{1 + i % 3}-15" for i in range(len(frame))]
    march = frame["recorded_at"].str.startswith("2026-03")
    frame.loc[march, "bmi_kg_m2"] += 12  # past the training support (min-max) for some
    frame.loc[frame["recorded_at"].str.startswith("2026-02"), LABEL] = np.nan
    frame.loc[march, LABEL] = 1.0
    path = tmp_path_factory.mktemp("monitor") / "site.csv"
    frame.to_csv(path, index=False)
    return path


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(25, 4, 5000), rng.normal(25, 4, 5000)
    assert psi(a, b, categorical=False) < 0.02
    assert psi(a, b + 6, categorical=False) > PSI_ALARM
    cats = rng.integers(0, 3, 5000).astype(float)
    assert psi(cats, cats, categorical=True) == pytest.approx(0, abs=1e-12)


def test_wilson_interval_of_zero_of_ten() -> None:
    lo, hi = wilson(0, 10)
    assert lo == pytest.approx(0, abs=1e-12) and hi == pytest.approx(0.2775, abs=1e-4)


def test_monitor_flags_the_shifted_column_and_the_miscalibrated_month(tiny_model_dir: Path,
                                                                      months: Path) -> None:
    result = monitor(months, model=tiny_model_dir)
    by = {m["period"]: m for m in result["months"]}
    assert set(by) == {"2026-01", "2026-02", "2026-03"}
    assert by["2026-03"]["psi_alarms"] == ["bmi_kg_m2"] and not by["2026-02"]["psi_alarms"]
    assert by["2026-02"]["outcomes"] == 0 and by["2026-01"]["outcomes"] > 900
    assert not by["2026-01"]["calibration_alarm"] and by["2026-03"]["calibration_alarm"]
    lo, hi = by["2026-01"]["observed_ci95"]
    assert lo < by["2026-01"]["observed"] < hi
    assert by["2026-03"]["out_of_population_rate"] > by["2026-01"]["out_of_population_rate"]


def test_cli_monitor_writes_html_and_fails_on_alarm_when_asked(
        tiny_model_dir: Path, months: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["monitor", "--data", str(months), "--model", str(tiny_model_dir), "--out",
            str(tmp_path / "m.html")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2026-03" in out and "ALARM: PSI > 0.25 in bmi_kg_m2" in out
    text = (tmp_path / "m.html").read_text()
    assert "data:image/png;base64," in text and "PSI by column" in text
    assert main([*args, "--fail-on-alarm"]) == 3


def test_monitor_reads_every_stored_assessment(tiny_model_dir: Path, tmp_path: Path) -> None:
    from .test_cli_errors import _store_with_outcomes

    cohort = simulate(400, 3)
    cohort = cohort[cohort["complaint"].notna()].reset_index(drop=True)
    url = _store_with_outcomes(cohort, tmp_path / "g.sqlite3", 30, outcomes=False)
    result = monitor(url, model=tiny_model_dir)
    assert result["rows_scored"] == 30 and result["months"][0]["outcomes"] == 0
    assert pd.Timestamp(result["months"][0]["period"])


def test_rows_from_records_equals_each_record_rows_stacked() -> None:
    from cds.intake import rows_from_record
    from cds.monitoring import rows_from_records
    from cds.validate import validate_record

    from .conftest import load_example

    records = [validate_record(load_example(name)) for name in (
        "runner_pfp_hip_driven", "cyclist_itbs", "intake_only_pfp_and_lbp",
        "adolescent_pfp_dynamometer", "lbp_radicular")]
    complaints, X = rows_from_records(records)
    each = [rows_from_record(r) for r in records]
    assert complaints == [c for cs, _ in each for c in cs]
    np.testing.assert_array_equal(X, np.vstack([rows for _, rows in each]))
