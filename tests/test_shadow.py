"""Shadow mode: a ``shadow`` alias scores every request beside production, stored, never shown."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import cds
from cds.model import MODEL_ID, Model
from service.serving import shadow
from service.store import get_store
from tests.conftest import load_example
from tests.service_fixtures import hook_call, make_app  # noqa: F401  (fixtures)
from tests.test_ui import post as ui_post
from training.artefact import seal
from training.registry import set_alias

SHADOW_VERSION = "9.8.7-shadowcand"


@pytest.fixture
def root(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models root with the tiny model as production and, as ``shadow``, a copy whose
    calibration is shifted (so its probabilities differ from production's)."""
    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / MODEL_ID / "0.0.1-test")
    candidate = models / MODEL_ID / SHADOW_VERSION
    shutil.copytree(tiny_model_dir, candidate)
    calibration = json.loads((candidate / "calibration.json").read_text())
    calibration["intercept"] += 1.5
    (candidate / "calibration.json").write_text(json.dumps(calibration))
    metadata = json.loads((candidate / "metadata.json").read_text())
    metadata["version"] = SHADOW_VERSION
    (candidate / "metadata.json").write_text(json.dumps(metadata))
    seal(candidate)
    set_alias(models, "production", "0.0.1-test")
    monkeypatch.setenv("GMED_MODELS_DIR", str(models))
    return models


def _shadow_app(make_app: Callable[..., Flask], root: Path, tiny_model: Model,  # noqa: F811
                *, alias: bool = True) -> Flask:
    if alias:
        set_alias(root, "shadow", SHADOW_VERSION)
    app = make_app(SHADOW_CHECK_INTERVAL=0.0)
    with app.app_context():
        shadow.host().wait()
    return app


def _shadow_rows(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        return get_store().rows("shadow_assessments")


def _metric(client: FlaskClient, name: str) -> float:
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not exported")


def test_every_assessment_is_shadow_scored_and_stored_linked_to_it(
        make_app: Callable[..., Flask], root: Path, tiny_model: Model) -> None:  # noqa: F811
    app = _shadow_app(make_app, root, tiny_model)
    client = app.test_client()
    record = load_example("runner_pfp_hip_driven")
    response = client.post("/v1/assessments", json=record)
    assert response.status_code == 201
    aid = response.get_json()["id"]
    rows = _shadow_rows(app)
    assert [r["assessment_id"] for r in rows] == [aid]
    assert rows[0]["model_version"] == SHADOW_VERSION
    candidate = cds.load_model(SHADOW_VERSION, root=root)
    expected = cds.assess(record, model=candidate).to_dict()["results"]
    assert [(s["complaint"], s["probability"]) for s in rows[0]["scores"]] == \
        [(r["complaint"], r["probability"]) for r in expected]
    production = {r["complaint"]: r["probability"] for r in response.get_json()["results"]}
    assert all(production[s["complaint"]] != s["probability"] for s in rows[0]["scores"])
    assert _metric(client, "gmed_shadow_scored_total") == 1.0


def test_batch_hooks_and_form_are_shadow_scored_too(
        make_app: Callable[..., Flask], root: Path, tiny_model: Model) -> None:  # noqa: F811
    app = _shadow_app(make_app, root, tiny_model)
    client = app.test_client()
    record = load_example("runner_pfp_hip_driven")
    batch = client.post("/v1/assessments/batch", json={"records": [record, record]})
    assert batch.status_code == 201
    assert client.post("/cds-services/gmed-driver", json=hook_call()).status_code == 200
    assert ui_post(client, record).status_code == 303
    assert len(_shadow_rows(app)) == 4


def test_the_shadow_result_is_in_no_answer_of_any_front_end(
        make_app: Callable[..., Flask], root: Path, tiny_model: Model) -> None:  # noqa: F811
    app = _shadow_app(make_app, root, tiny_model)
    client = app.test_client()
    record = load_example("runner_pfp_hip_driven")
    bodies = []
    created = client.post("/v1/assessments", json=record)
    aid = created.get_json()["id"]
    bodies += [created, client.get(f"/v1/assessments/{aid}"),
               client.post("/v1/assessments", json=record,
                           headers={"Accept": "application/fhir+json"}),
               client.get(f"/v1/assessments/{aid}", headers={"Accept": "application/fhir+json"}),
               client.get(f"/fhir/RiskAssessment/{aid}"),
               client.post("/v1/assessments/batch", json={"records": [record]}),
               client.post("/cds-services/gmed-driver", json=hook_call()),
               client.get("/v1/model"), client.get("/ui/model")]
    page = ui_post(client, record)
    path = page.headers["Location"]
    bodies += [page, client.get(path), client.get(f"{path}/handout"),
               client.get(f"{path}/history")]
    scores = {s["probability"] for r in _shadow_rows(app) for s in r["scores"]}
    assert len(_shadow_rows(app)) == 5 and scores
    for response in bodies:
        assert response.status_code < 400, response.request.path
        text = response.get_data(as_text=True)
        assert SHADOW_VERSION not in text and "shadow" not in text.lower(), response.request.path
    for response in (created, client.get(f"/v1/assessments/{aid}")):
        shown = {r["probability"] for r in response.get_json()["results"]}
        assert not shown & scores


def test_a_red_flag_request_is_not_shadow_scored(
        make_app: Callable[..., Flask], root: Path, tiny_model: Model) -> None:  # noqa: F811
    app = _shadow_app(make_app, root, tiny_model)
    response = app.test_client().post("/v1/assessments",
                                      json=load_example("red_flag_trauma_swelling"))
    assert response.status_code == 201 and response.get_json()["action"] == "refer"
    assert _shadow_rows(app) == []


def test_a_failing_shadow_model_never_fails_the_request_and_is_counted(
        make_app: Callable[..., Flask], root: Path, tiny_model: Model,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = _shadow_app(make_app, root, tiny_model)
    client = app.test_client()

    def broken(model: Model, record: Any) -> Any:
        raise RuntimeError("shadow model exploded")

    monkeypatch.setattr(shadow, "scores", broken)
    record = load_example("runner_pfp_hip_driven")
    assert client.post("/v1/assessments", json=record).status_code == 201
    assert client.post("/cds-services/gmed-driver", json=hook_call()).status_code == 200
    assert client.post("/v1/assessments/batch", json={"records": [record]}).status_code == 201
    assert _shadow_rows(app) == []
    assert _metric(client, "gmed_shadow_failures_total") == 3.0


def test_an_unloadable_shadow_version_leaves_production_serving(
        make_app: Callable[..., Flask], root: Path, tiny_model: Model) -> None:  # noqa: F811
    (root / MODEL_ID / SHADOW_VERSION / "model.txt").write_text("tampered")
    app = _shadow_app(make_app, root, tiny_model)
    response = app.test_client().post("/v1/assessments",
                                      json=load_example("runner_pfp_hip_driven"))
    assert response.status_code == 201 and _shadow_rows(app) == []


def test_no_shadow_alias_costs_no_model_load_and_no_scoring(
        make_app: Callable[..., Flask], root: Path, tiny_model: Model,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(shadow.cds, "load_model", lambda *a, **k: calls.append("load"))
    monkeypatch.setattr(shadow, "scores", lambda *a, **k: calls.append("score"))
    app = _shadow_app(make_app, root, tiny_model, alias=False)
    client = app.test_client()
    for _ in range(3):
        assert client.post("/v1/assessments",
                           json=load_example("runner_pfp_hip_driven")).status_code == 201
    assert calls == [] and _shadow_rows(app) == []
    assert _metric(client, "gmed_shadow_scored_total") == 0.0


def test_removing_the_alias_stops_shadow_scoring(
        make_app: Callable[..., Flask], root: Path, tiny_model: Model) -> None:  # noqa: F811
    app = _shadow_app(make_app, root, tiny_model)
    client = app.test_client()
    record = load_example("runner_pfp_hip_driven")
    assert client.post("/v1/assessments", json=record).status_code == 201
    registry = json.loads((root / "registry.json").read_text())
    del registry["aliases"]["shadow"]
    (root / "registry.json").write_text(json.dumps(registry) + "\n\n")
    assert client.post("/v1/assessments", json=record).status_code == 201
    assert len(_shadow_rows(app)) == 1


def _records(n: int) -> list[tuple[dict[str, Any], float]]:
    """``n`` simulated patients without a red flag, one complaint each, with their outcome."""
    import pandas as pd

    from cds.features import BY_NAME, record_fields
    from training.schema import LABEL
    from training.simulate import simulate

    cohort = simulate(400, 8)
    cohort = cohort[cohort["complaint"].notna() & (cohort["rf_trauma_rapid_swelling"] == 0)]
    out = []
    for _, row in cohort.head(n).iterrows():
        record = {f.name: (row[f.name].item() if hasattr(row[f.name], "item") else row[f.name])
                  for f in record_fields() if f.role not in ("rows", "red_flag")
                  and not pd.isna(row[f.name])}
        record = {k: (bool(v) if BY_NAME[k].kind == "boolean" else v) for k, v in record.items()}
        out.append(({**record, "complaints": [str(row["complaint"])]}, float(row[LABEL])))
    return out


def test_cds_monitor_compares_production_and_shadow_on_live_traffic(
        make_app: Callable[..., Flask], root: Path, tiny_model: Model, tiny_model_dir: Path,  # noqa: F811
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main
    from training.monitor import monitor

    app = _shadow_app(make_app, root, tiny_model)
    client = app.test_client()
    for i, (record, label) in enumerate(_records(60)):
        created = client.post("/v1/assessments", json=record)
        assert created.status_code == 201
        if i < 40:  # outcomes have arrived for two thirds
            assert client.post("/v1/outcomes", json={
                "assessment_id": created.get_json()["id"], "complaint": record["complaints"][0],
                "hip_driver": bool(label)}).status_code == 201
    url = app.config["DATABASE_URL"]
    [s] = monitor(url, model=tiny_model_dir, root=root)["shadow"]
    assert s["version"] == SHADOW_VERSION and s["complaints"] == 60 and s["outcomes"] == 40
    assert s["mean_difference"] > 0.05  # its calibration intercept is 1.5 log-odds higher
    assert 0 <= s["band_agreement"] < 1
    # the same trees, recalibrated monotonically: the same ranking, the same AUROC
    assert s["auroc_shadow"] == s["auroc_production"] is not None
    assert main(["monitor", "--data", url, "--model", str(tiny_model_dir), "--root", str(root),
                 "--out", str(tmp_path / "m.html")]) == 0
    out = capsys.readouterr().out
    assert f"shadow {SHADOW_VERSION} vs 0.0.1-test on 60 live complaints" in out
    assert "Shadow model on live traffic" in (tmp_path / "m.html").read_text()


def test_cds_models_unset_ends_shadow_mode_and_is_recorded(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main

    assert main(["models", "promote", SHADOW_VERSION, "--alias", "shadow",
                 "--root", str(root)]) == 0
    assert main(["models", "unset", "--alias", "shadow", "--root", str(root)]) == 0
    assert "shadow" not in json.loads((root / "registry.json").read_text())["aliases"]
    capsys.readouterr()
    assert main(["models", "history", "--alias", "shadow", "--root", str(root)]) == 0
    assert f"unset  shadow: {SHADOW_VERSION} -> (none)" in capsys.readouterr().out
    assert main(["models", "unset", "--alias", "shadow", "--root", str(root)]) == 2
    assert "alias 'shadow' is not set" in capsys.readouterr().err
