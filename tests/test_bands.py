"""Band thresholds chosen by net benefit on held-out data, stored with their rationale, shown on
the model facts; models written before (0.1.0) keep working with their judgement-set bands."""

from __future__ import annotations

import json
from html import unescape as html_unescape
from pathlib import Path

import numpy as np
from flask.testing import FlaskClient

from cds.facts import THRESHOLD_RATIONALE, build_facts
from cds.model import Model
from training.bands import DECISIONS, choose_bands, net_benefit_at


def _cohort(n: int, truth: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Predicted ``p`` uniform on (0, 0.7); the outcome happens with probability ``truth * p``."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 0.7, n)
    return (rng.random(n) < truth * p).astype(int), p


def test_a_calibrated_model_gets_the_decisions_threshold_probabilities() -> None:
    y, p = _cohort(200_000)
    bands, selection = choose_bands(y, p, "synthetic")
    assert abs(bands["moderate_from"] - 0.20) <= 0.02
    assert abs(bands["high_from"] - 0.40) <= 0.02
    assert all(d["adds_net_benefit"] for d in selection["decisions"])


def test_a_model_that_overestimates_gets_higher_cut_offs() -> None:
    """True risk is 0.7 x the predicted one: acting at the stated threshold needs a higher p."""
    y, p = _cohort(200_000, truth=0.7)
    bands, _ = choose_bands(y, p, "synthetic")
    assert bands["moderate_from"] >= 0.26 and bands["high_from"] >= 0.48


def test_the_chosen_cut_off_has_the_most_net_benefit_within_the_span() -> None:
    y, p = _cohort(20_000, seed=1)
    _, selection = choose_bands(y, p, "synthetic")
    for d, chosen in zip(DECISIONS, selection["decisions"], strict=True):
        t = d.threshold_probability
        grid = np.round(np.arange(d.span[0], d.span[1] + 1e-9, 0.01), 2)
        best = max(net_benefit_at(y, p, float(c), t) for c in grid)
        assert net_benefit_at(y, p, chosen["cut_off"], t) == best
        assert chosen["net_benefit_per_100"]["model"] == round(100 * best, 2)


def test_a_model_without_signal_keeps_the_threshold_probabilities_and_says_so() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(50_000) < 0.25).astype(int)
    p = rng.uniform(0.0, 0.7, 50_000)  # unrelated to y
    bands, selection = choose_bands(y, p, "synthetic")
    assert bands == {"moderate_from": 0.20, "high_from": 0.40}
    assert not any(d["adds_net_benefit"] for d in selection["decisions"])
    assert "should not rest on it" in selection["rationale"]


def test_training_stores_the_bands_with_their_rationale(tiny_model: Model,
                                                        tiny_model_dir: Path) -> None:
    meta = tiny_model.metadata
    selection = meta["band_selection"]
    assert tiny_model.bands == meta["bands"]
    assert [d["cut_off"] for d in selection["decisions"]] == [
        meta["bands"]["moderate_from"], meta["bands"]["high_from"]]
    assert "held-out" in selection["rationale"] and selection["data"]
    facts = json.loads((tiny_model_dir / "model_facts.json").read_text())
    assert facts["thresholds"]["rationale"] == selection["rationale"]
    assert facts["thresholds"]["decisions"] == selection["decisions"]
    card = (tiny_model_dir / "MODEL_CARD.md").read_text()
    assert selection["decisions"][0]["action"] in card


def test_a_model_without_a_band_selection_keeps_its_bands_and_says_how_they_were_set() -> None:
    facts = build_facts({"id": "gmed-driver", "version": "0.1.0",
                         "bands": {"moderate_from": 0.2, "high_from": 0.4}}, None)
    assert facts["thresholds"]["bands"] == {"moderate_from": 0.2, "high_from": 0.4}
    assert facts["thresholds"]["rationale"] == THRESHOLD_RATIONALE
    assert facts["thresholds"]["decisions"] == []


def test_the_model_facts_page_shows_the_bands_decisions_and_rationale(
        client: FlaskClient, tiny_model: Model) -> None:
    html = client.get("/ui/model").get_data(as_text=True)
    selection = tiny_model.metadata["band_selection"]
    for d in selection["decisions"]:
        assert d["action"] in html
        assert f"{d['band'].capitalize()} {round(100 * d['cut_off'])}%" in html
    # the page names the held-out data in plain words, not by file and hash
    assert selection["rationale"].split(" Data: ")[0] in html_unescape(html)
    assert "Smallest and largest values seen in training" in html
