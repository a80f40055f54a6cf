"""``/metrics``: the monitoring gauges carry the figures ``cds monitor`` computes on the same store."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from cds.features import MODEL_COLUMNS
from cds.model import Model
from cds.monitoring import REFERENCE_FILE
from service.http import metrics
from tests.conftest import load_example
from tests.service_fixtures import make_app  # noqa: F401  (fixture)
from tests.test_cli_errors import _store_with_outcomes
from training.artefact import seal
from training.monitor import monitor
from training.simulate import simulate


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    """A site whose patients are heavier than the training cohort (BMI +6 kg/m²)."""
    frame = simulate(600, 5)
    frame = frame[frame["complaint"].notna()].reset_index(drop=True)
    frame["bmi_kg_m2"] += 6
    return frame


def _gauges(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _helps(app: Flask) -> dict[str, str]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {f.name: f.documentation for f in text_string_to_metric_families(text)}


def test_gauges_carry_the_figures_cds_monitor_computes_on_the_same_store(
        make_app: Callable[..., Flask], tiny_model_dir: Path, cohort: pd.DataFrame,  # noqa: F811
        tmp_path: Path) -> None:
    url = _store_with_outcomes(cohort, tmp_path / "store.sqlite3", 150)
    _store_with_outcomes(cohort.iloc[150:].reset_index(drop=True), tmp_path / "store.sqlite3",
                         100, outcomes=False)
    expected = monitor(url, model=tiny_model_dir)
    assert expected["reference"].startswith("the training data shipped with the model")
    [month] = expected["months"]
    g = _gauges(make_app(DATABASE_URL=url, MONITOR_CACHE_SECONDS=0))
    assert g[("gmed_monitor_rows", ())] == month["rows"] == 250
    for column in MODEL_COLUMNS:
        assert g[("gmed_monitor_psi", (("feature", column),))] == month["psi"][column], column
    assert month["psi_alarms"] == ["bmi_kg_m2"]
    assert g[("gmed_monitor_psi_alarms", ())] == 1
    assert g[("gmed_monitor_out_of_population_ratio", ())] == month["out_of_population_rate"]
    assert g[("gmed_monitor_prediction_mean", ())] == month["prediction"]["mean"]
    assert [g[("gmed_monitor_prediction_quantile", (("quantile", q),))]
            for q in ("0.25", "0.5", "0.75")] == month["prediction"]["quartiles"]
    assert g[("gmed_monitor_outcomes", ())] == month["outcomes"] == 150
    assert g[("gmed_monitor_observed_ratio", ())] == month["observed"]
    assert [g[("gmed_monitor_observed_ratio_ci95_lower", ())],
            g[("gmed_monitor_observed_ratio_ci95_upper", ())]] == month["observed_ci95"]
    assert g[("gmed_monitor_expected_ratio", ())] == month["expected"]
    assert g[("gmed_monitor_calibration_alarm", ())] == float(month["calibration_alarm"])


def test_help_text_names_the_bounds(make_app: Callable[..., Flask], cohort: pd.DataFrame,  # noqa: F811
                                    tmp_path: Path) -> None:
    url = _store_with_outcomes(cohort, tmp_path / "store.sqlite3", 20)
    helps = _helps(make_app(DATABASE_URL=url, MONITOR_CACHE_SECONDS=0))
    assert "0.1" in helps["gmed_monitor_psi"] and "above 0.25 major shift (alarm)" in \
        helps["gmed_monitor_psi"]
    assert "more than 5.0 percentage points" in helps["gmed_monitor_calibration_alarm"]
    assert "last 30 days" in helps["gmed_monitor_rows"]


def test_figures_are_computed_on_scrape_at_most_once_per_cache_period_never_on_assessment(
        make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    calls: list[int] = []
    real = metrics.monitor_figures

    def counted() -> dict[str, Any]:
        calls.append(1)
        return real()

    monkeypatch.setattr(metrics, "monitor_figures", counted)
    app = make_app(MONITOR_CACHE_SECONDS=3600)
    client = app.test_client()
    for _ in range(3):
        assert client.post("/v1/assessments",
                           json=load_example("runner_pfp_hip_driven")).status_code == 201
    assert calls == []
    first = _gauges(app)[("gmed_monitor_rows", ())]
    assert first > 0 and calls == [1]
    assert client.post("/v1/assessments",
                       json=load_example("runner_pfp_hip_driven")).status_code == 201
    assert _gauges(app)[("gmed_monitor_rows", ())] == first  # the cached figures
    assert calls == [1]


def test_the_window_is_bounded_to_the_newest_rows(
        make_app: Callable[..., Flask], cohort: pd.DataFrame, tmp_path: Path) -> None:  # noqa: F811
    url = _store_with_outcomes(cohort, tmp_path / "store.sqlite3", 40, outcomes=False)
    g = _gauges(make_app(DATABASE_URL=url, MONITOR_CACHE_SECONDS=0, MONITOR_MAX_ROWS=25))
    assert g[("gmed_monitor_rows", ())] == 25


def test_a_model_without_a_shipped_reference_exports_no_psi(
        make_app: Callable[..., Flask], tiny_model_dir: Path, cohort: pd.DataFrame,  # noqa: F811
        tmp_path: Path) -> None:
    bare = tmp_path / "gmed-driver" / "0.0.1-bare"
    shutil.copytree(tiny_model_dir, bare)
    (bare / REFERENCE_FILE).unlink()
    seal(bare)
    url = _store_with_outcomes(cohort, tmp_path / "store.sqlite3", 20)
    g = _gauges(make_app(MODEL=str(bare), DATABASE_URL=url, MONITOR_CACHE_SECONDS=0))
    assert g[("gmed_monitor_rows", ())] == 20
    assert not any(name == "gmed_monitor_psi" for name, _ in g)


def test_a_failure_computing_the_figures_leaves_metrics_answering(
        make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        tiny_model: Model) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("store down")

    monkeypatch.setattr(metrics, "monitor_figures", broken)
    response = make_app(MONITOR_CACHE_SECONDS=0).test_client().get("/metrics")
    assert response.status_code == 200 and b"gmed_http_requests_total" in response.data


def test_the_window_leaves_out_assessments_older_than_its_days(
        make_app: Callable[..., Flask], cohort: pd.DataFrame, tmp_path: Path) -> None:  # noqa: F811
    from datetime import UTC, datetime, timedelta

    from service.store import get_store

    url = _store_with_outcomes(cohort, tmp_path / "store.sqlite3", 5, outcomes=False)
    app = make_app(DATABASE_URL=url, MONITOR_CACHE_SECONDS=0)
    with app.app_context():
        store = get_store()
        assert len(store.recent_assessments(datetime.now(UTC) - timedelta(days=1), 100)) == 5
        assert store.recent_assessments(datetime.now(UTC) + timedelta(seconds=1), 100) == []
    g = _gauges(make_app(DATABASE_URL=url, MONITOR_CACHE_SECONDS=0, MONITOR_WINDOW_DAYS=1e-9))
    assert g[("gmed_monitor_rows", ())] == 0


def test_a_complaint_without_outcome_is_monitored_beside_its_sibling_with_one(
        make_app: Callable[..., Flask], tiny_model_dir: Path, cohort: pd.DataFrame,  # noqa: F811
        tmp_path: Path) -> None:
    """An assessment of two complaints with an outcome for one: ``cds monitor`` (via
    ``read_store``) and the gauges both count both complaints (it used to drop the second)."""
    from service.store import SQLStore
    from training.sources import read_store

    url = _store_with_outcomes(cohort, tmp_path / "store.sqlite3", 30)
    store = SQLStore(url, b"secret")
    record = {k: v for k, v in load_example("intake_only_pfp_and_lbp").items()
              if k != "patient_id"}
    first, second = record["complaints"]
    aid = store.save_assessment(source="api", inputs=record,
                                result={"model": {"id": "gmed-driver", "version": "0"},
                                        "action": "score"},
                                patient_ref=store.pseudonym("two"), caller="test")
    store.save_outcome(assessment_id=aid, complaint=first, hip_driver=True, confirmed_on=None,
                       caller="t", patient_ref=None)
    frame = read_store(url, unlabelled=True).frame
    mine = frame[frame["assessment_id"] == aid].set_index("complaint")["hip_driver"]
    assert sorted(mine.index) == sorted([first, second])
    assert mine[first] == 1.0 and pd.isna(mine[second])
    labelled = read_store(url).frame
    assert list(labelled.loc[labelled["assessment_id"] == aid, "complaint"]) == [first]
    [month] = monitor(url, model=tiny_model_dir)["months"]
    g = _gauges(make_app(DATABASE_URL=url, MONITOR_CACHE_SECONDS=0))
    assert g[("gmed_monitor_rows", ())] == month["rows"] == 32
    assert g[("gmed_monitor_outcomes", ())] == month["outcomes"] == 31
