"""A red flag means no score, anywhere; a red-flag question not asked is named, everywhere.

Every front end, for every red flag of the contract: Python (``cds.assess``), the CLI (text and
JSON), the JSON API, the CDS Hooks card, the FHIR RiskAssessment, the clinician page and batch
scoring. A refer result carries no probability, band, factor, raw score or next test; the
RiskAssessment codes the referral. An incomplete screen is a warning with its own code, and the
score is still given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient

import cds
from cds.features import LOCAL_SYSTEM, RED_FLAGS
from cds.safety import SCREEN_INCOMPLETE, WARNING_CODES
from service.ehr.cards import build_cards
from service.store import get_store
from tests.conftest import load_example
from tests.service_fixtures import hook_call, observation, runner_prefetch
from tests.test_ui import post
from training.cli import main
from training.score import score_frame
from training.simulate import simulate

FLAGS = [f.name for f in RED_FLAGS]
ESTIMATE_KEYS = {"probability", "band", "factors", "raw_score", "base_value", "starting_point",
                 "next_best_assessment", "not_recorded", "probabilityDecimal",
                 "qualitativeRisk"}


def _flagged(flag: str) -> dict[str, Any]:
    return {**load_example("runner_pfp_hip_driven"), flag: True}


def _unscreened() -> dict[str, Any]:
    """The hip-driven runner with two red-flag questions not asked."""
    record = load_example("runner_pfp_hip_driven")
    del record["rf_fever"], record["rf_night_pain"]
    return record


def _keys(value: Any) -> set[str]:
    """Every key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


# ------------------------------------------------------------------ a red flag: no score


@pytest.mark.parametrize("flag", FLAGS)
def test_python_refer_result_has_no_estimate(tiny_model: cds.Model, flag: str) -> None:
    out = cds.assess(_flagged(flag), model=tiny_model).to_dict()
    assert out["action"] == "refer" and out["results"] == []
    assert [f["feature"] for f in out["red_flags"]] == [flag]
    assert "Refer / rule out" in out["referral"] and "No hip-driver estimate" in out["referral"]
    assert not _keys(out) & ESTIMATE_KEYS


@pytest.mark.parametrize("flag", FLAGS)
def test_cli_refer_text_and_json_have_no_estimate(tiny_model_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  flag: str) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(_flagged(flag)))
    assert main(["assess", "--input", str(path), "--model", str(tiny_model_dir),
                 "--explain"]) == 0
    text = capsys.readouterr().out
    assert "RED FLAG - Refer / rule out" in text
    assert "%" not in text and "drives it" not in text and "Next:" not in text
    assert main(["assess", "--input", str(path), "--model", str(tiny_model_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["action"] == "refer" and not _keys(out) & ESTIMATE_KEYS


@pytest.mark.parametrize("flag", FLAGS)
def test_json_api_refer_has_no_estimate(client: FlaskClient, flag: str) -> None:
    body = client.post("/v1/assessments", json=_flagged(flag)).get_json()
    assert body["action"] == "refer" and body["results"] == [] and body["referral"]
    assert not _keys(body) & ESTIMATE_KEYS
    assert client.get(f"/v1/assessments/{body['id']}").get_json() == body


@pytest.mark.parametrize("flag", FLAGS)
def test_fhir_risk_assessment_codes_the_referral_without_a_probability(
        client: FlaskClient, flag: str) -> None:
    ra = client.post("/v1/assessments", json=_flagged(flag),
                     headers={"Accept": "application/fhir+json"}).get_json()
    assert ra["resourceType"] == "RiskAssessment"
    [prediction] = ra["prediction"]
    codes = {(c["system"], c["code"]) for c in prediction["outcome"]["coding"]}
    assert codes == {("http://snomed.info/sct", "3457005"), (LOCAL_SYSTEM, "refer_red_flag")}
    assert not _keys(ra) & ESTIMATE_KEYS
    label = next(f.label for f in RED_FLAGS if f.name == flag)
    assert label in prediction["rationale"] and ra["note"][0]["text"].startswith("RED FLAG")


@pytest.mark.parametrize("flag", FLAGS)
def test_cds_hooks_card_for_a_refer_has_no_estimate(tiny_model: cds.Model, flag: str) -> None:
    assessment = cds.assess(_flagged(flag), model=tiny_model)
    [card], rows = build_cards(assessment, "a1", "https://cds.example.org")
    assert card["indicator"] == "critical" and "suggestions" not in card
    assert "%" not in card["summary"] + card["detail"]
    assert "No hip-driver estimate" in card["detail"] and rows[0]["complaint"] is None


def test_cds_hooks_call_with_a_red_flag_gives_only_the_referral_card(client: FlaskClient) -> None:
    prefetch = runner_prefetch()
    prefetch["observations"]["entry"].append(
        {"resource": observation("rf_fever", valueBoolean=True, effectiveDateTime="2026-02-01")})
    [card] = client.post("/cds-services/gmed-driver",
                         json=hook_call(prefetch=prefetch)).get_json()["cards"]
    assert card["indicator"] == "critical" and "%" not in card["detail"]


@pytest.mark.parametrize("flag", FLAGS)
def test_page_for_a_refer_shows_the_referral_and_no_estimate(client: FlaskClient, app: Flask,
                                                            flag: str) -> None:
    response = post(client, _flagged(flag))
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Refer / rule out serious pathology first" in html
    assert next(f.label for f in RED_FLAGS if f.name == flag) in html
    for estimate in ('class="pct"', 'class="prob-scale"', 'class="waterfall"', "Next best",
                     "Why: the largest factors"):
        assert estimate not in html


def test_page_never_shows_an_estimate_stored_with_a_refer(client: FlaskClient, app: Flask,
                                                          tiny_model: cds.Model) -> None:
    """An assessment stored before refer results stopped carrying estimates (action refer and
    a result with a probability) is shown as the referral only."""
    result = cds.assess(load_example("runner_pfp_hip_driven"), model=tiny_model).to_dict()
    result.update(action="refer", red_flags=[{"feature": "rf_fever", "label": "Fever"}])
    del result["referral"]
    with app.app_context():
        aid = get_store().save_assessment(source="ui", inputs={}, result=result,
                                          caller="test", patient_ref=None)
    html = client.get(f"/ui/assessments/{aid}").get_data(as_text=True)
    assert "Refer / rule out serious pathology first" in html
    assert 'class="pct"' not in html and 'class="waterfall"' not in html


@pytest.mark.parametrize("flag", FLAGS)
def test_batch_scoring_never_scores_a_red_flag_row(tiny_model: cds.Model, flag: str) -> None:
    frame = simulate(40, 5)
    frame = frame[frame["complaint"].notna()].reset_index(drop=True)
    for f in FLAGS:
        frame[f] = 0.0
    frame.loc[::2, flag] = 1.0
    scored = score_frame(tiny_model, frame)
    flagged = frame[flag].to_numpy() == 1.0
    assert (scored.loc[flagged, "reason"] == "red_flag: refer").all()
    estimates = ["raw_score", "probability", "base_value",
                 *(c for c in scored.columns if c.startswith("contribution_"))]
    assert scored.loc[flagged, estimates].isna().all().all()
    assert scored.loc[flagged, "band"].isna().all()
    assert scored.loc[~flagged, "probability"].notna().all()


def test_golden_check_catches_a_refer_that_carries_an_estimate(tiny_model: cds.Model,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    import cds.golden as golden

    assert golden.check_model(tiny_model) == []
    scored = cds.assess(load_example("runner_pfp_hip_driven"), model=tiny_model)

    def leaky(record: dict[str, Any], model: cds.Model) -> Any:
        out = cds.assess(record, model=model)
        return out if out.action == "assess" else type(out)(
            model=out.model, action="refer", red_flags=out.red_flags, warnings=out.warnings,
            results=scored.results, referral=out.referral)

    monkeypatch.setattr(golden, "assess", leaky)
    assert any("refer result carries an estimate" in p for p in golden.check_model(tiny_model))


# --------------------------------------------------- red-flag questions not asked: named


def test_the_screen_warning_has_its_own_code_and_names_each_question(
        tiny_model: cds.Model) -> None:
    assert SCREEN_INCOMPLETE == "red-flag-screen-incomplete" and SCREEN_INCOMPLETE in WARNING_CODES
    out = cds.assess(_unscreened(), model=tiny_model).to_dict()
    assert out["action"] == "assess" and 0 < out["results"][0]["probability"] < 1  # still scored
    [warning] = [w for w in out["warnings"] if w["code"] == SCREEN_INCOMPLETE]
    assert warning["feature"] == "rf_fever,rf_night_pain"
    for f in RED_FLAGS:
        assert (f.label in warning["message"]) == (f.name in ("rf_fever", "rf_night_pain"))
    assert "not asked" in warning["message"]


def test_a_complete_screen_gives_no_warning(tiny_model: cds.Model) -> None:
    out = cds.assess(load_example("runner_pfp_hip_driven"), model=tiny_model).to_dict()
    assert not [w for w in out["warnings"] if w["code"] == SCREEN_INCOMPLETE]


@pytest.mark.parametrize("flag", FLAGS)
def test_each_question_left_unanswered_is_named(tiny_model: cds.Model, flag: str) -> None:
    # each question is asked for the complaints it applies to (saddle numbness: low back pain)
    question = next(f for f in RED_FLAGS if f.name == flag)
    record = {**load_example("runner_pfp_hip_driven"), "complaints": [question.complaints[0]],
              **{f.name: False for f in RED_FLAGS}}
    del record[flag]
    [warning] = [w for w in cds.assess(record, model=tiny_model).warnings
                 if w["code"] == SCREEN_INCOMPLETE]
    assert warning["feature"] == flag
    assert next(f.label for f in RED_FLAGS if f.name == flag) in warning["message"]


def test_a_refer_still_names_the_questions_not_asked(tiny_model: cds.Model) -> None:
    out = cds.assess({**_unscreened(), "rf_saddle_numbness": True}, model=tiny_model)
    [warning] = out.warnings
    assert warning["code"] == SCREEN_INCOMPLETE and "for the referral" in warning["message"]


def _fever_and_night_pain_named(text: str) -> bool:
    labels = [f.label for f in RED_FLAGS if f.name in ("rf_fever", "rf_night_pain")]
    return "Red-flag screen incomplete" in text and all(label in text for label in labels)


def test_cli_names_the_questions_not_asked(tiny_model_dir: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(_unscreened()))
    assert main(["assess", "--input", str(path), "--model", str(tiny_model_dir),
                 "--explain"]) == 0
    text = capsys.readouterr().out
    assert _fever_and_night_pain_named(text) and "drives it" in text  # and still scored


def test_json_api_and_fhir_name_the_questions_not_asked(client: FlaskClient) -> None:
    body = client.post("/v1/assessments", json=_unscreened()).get_json()
    assert any(w["code"] == SCREEN_INCOMPLETE and _fever_and_night_pain_named(w["message"])
               for w in body["warnings"])
    ra = client.post("/v1/assessments", json=_unscreened(),
                     headers={"Accept": "application/fhir+json"}).get_json()
    assert any(_fever_and_night_pain_named(n["text"]) for n in ra["note"])
    assert "probabilityDecimal" in ra["prediction"][0]


def test_cds_hooks_card_names_the_questions_not_asked(tiny_model: cds.Model) -> None:
    assessment = cds.assess(_unscreened(), model=tiny_model)
    [card], _ = build_cards(assessment, "a1", "https://cds.example.org")
    assert _fever_and_night_pain_named(card["detail"]) and "%" in card["summary"]


def test_cds_hooks_call_names_the_questions_not_asked(client: FlaskClient) -> None:
    """The realistic prefetch answers only the fever question: every other one is named."""
    [card] = client.post("/cds-services/gmed-driver", json=hook_call()).get_json()["cards"]
    others = [f.label for f in RED_FLAGS  # the prefetch's complaint is patellofemoral pain
              if f.name != "rf_fever" and "pfp" in f.complaints]
    assert "Red-flag screen incomplete" in card["detail"]
    assert all(label in card["detail"] for label in others)


def test_page_names_the_questions_not_asked(client: FlaskClient, app: Flask) -> None:
    response = post(client, _unscreened())
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Red-flag screen incomplete." in html and _fever_and_night_pain_named(html)
    assert 'class="pct"' in html  # still scored


def test_batch_scoring_names_the_questions_not_asked(tiny_model: cds.Model) -> None:
    frame = simulate(30, 6)
    frame = frame[frame["complaint"].notna()].reset_index(drop=True)
    for f in FLAGS:
        frame[f] = 0.0
    frame["rf_fever"] = np.nan
    frame.loc[0, "rf_night_pain"] = np.nan
    scored = score_frame(tiny_model, frame)
    assert scored["probability"].notna().all()
    assert _fever_and_night_pain_named(scored.loc[0, "warning"])
    fever = next(f.label for f in RED_FLAGS if f.name == "rf_fever")
    assert all(fever in w for w in scored["warning"])
    complete = frame.assign(rf_fever=0.0, rf_night_pain=0.0)
    assert pd.isna(score_frame(tiny_model, complete)["warning"]).all()
