"""The shipped production model: verified, small, honest about its data, and as good as claimed."""

from __future__ import annotations

import pytest
from sklearn.metrics import roc_auc_score

import cds
from cds.model import verify_manifest
from training.dataset import prepare
from training.simulate import simulate

from .conftest import load_example

pytestmark = pytest.mark.shipped


def test_manifest_verifies_and_every_file_is_listed(shipped_model: cds.Model) -> None:
    listed = verify_manifest(shipped_model.path)
    on_disk = {p.name for p in shipped_model.path.iterdir()} - {"manifest.json"}
    assert set(listed) == on_disk


def test_artefact_is_small(shipped_model: cds.Model) -> None:
    size = sum(p.stat().st_size for p in shipped_model.path.iterdir())
    assert size < 3 * 1024 * 1024


def test_it_says_it_was_trained_on_simulated_data(shipped_model: cds.Model) -> None:
    assert "simulated" in shipped_model.trained_on
    card = (shipped_model.path / "MODEL_CARD.md").read_text()
    assert "Trained on simulated data" in card
    assert "retrained on local outcomes" in card
    assert shipped_model.metadata["training_data"]["rows"] > 150_000


def test_recorded_figures_meet_the_targets(shipped_model: cds.Model) -> None:
    m = shipped_model.metadata["metrics"]
    assert m["model"]["auroc"] >= m["ceiling"]["auroc"] - 0.02
    assert 0.9 <= m["model"]["calibration_slope"] <= 1.1
    assert abs(m["model"]["calibration_intercept"]) <= 0.1
    assert m["model"]["auroc"] > m["logistic_baseline"]["auroc"] - 0.01


def test_figures_reproduce_on_a_fresh_cohort(shipped_model: cds.Model) -> None:
    """Not just recorded: a new simulated cohort (unseen seed) gives the same discrimination."""
    test = prepare(simulate(20_000, 4242))
    p = shipped_model.probability(shipped_model.predict_raw(test.X))
    auroc = roc_auc_score(test.y, p)
    ceiling = roc_auc_score(test.y, test.frame["p_true"])
    assert auroc >= ceiling - 0.025
    assert abs(auroc - shipped_model.metadata["metrics"]["model"]["auroc"]) < 0.03


def test_examples_tell_a_clinically_sensible_story(shipped_model: cds.Model) -> None:
    def prob(name: str) -> float:
        return cds.assess(load_example(name), model=shipped_model).results[0].probability

    hip_driven = prob("runner_pfp_hip_driven")
    assert hip_driven > prob("lbp_radicular")
    assert hip_driven > prob("cyclist_itbs")
    assert cds.assess(load_example("runner_pfp_hip_driven"), model=shipped_model
                      ).results[0].band == "high"
    assert cds.assess(load_example("red_flag_trauma_swelling"), model=shipped_model
                      ).action == "refer"
