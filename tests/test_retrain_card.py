"""``model_facts.json`` and ``MODEL_CARD.md`` for every trained version."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import cds
from cds.facts import FACTS_FILE, TRIPOD_AI
from cds.model import verify_manifest
from training.pipeline import train

from .test_retrain_fixtures import retrain_data, retrain_root

__all__ = ["retrain_data", "retrain_root"]


def _facts(directory: Path) -> dict:
    return json.loads((directory / FACTS_FILE).read_text())


def test_every_version_has_sealed_facts_and_card(retrain_root: Path) -> None:
    for directory in (retrain_root / "gmed-driver").iterdir():
        files = verify_manifest(directory)
        assert FACTS_FILE in files and "MODEL_CARD.md" in files


def test_facts_answer_every_tripod_ai_item(retrain_root: Path) -> None:
    facts = _facts(retrain_root / "gmed-driver" / "1.0.0")
    for section in TRIPOD_AI.values():
        node = facts
        for key in section.split("."):
            node = node[key]
        assert node, section
    assert facts["intended_use"]["users"] and facts["outcome"]["definition"].startswith("`hip_driver`")
    assert facts["data"]["sha256"] and facts["data"]["simulated"] is True


def test_without_eval_data_figures_say_they_come_from_the_internal_split(retrain_root: Path) -> None:
    facts = _facts(retrain_root / "gmed-driver" / "1.0.0")
    assert "internal validation split" in facts["performance"]["evaluation_data"]
    overall = facts["performance"]["overall"]
    assert overall["auroc_ci95"][0] <= overall["auroc"] <= overall["auroc_ci95"][1]
    assert set(facts["performance"]["subgroups"]) == {"sex", "age_band", "complaint", "care_setting"}


def test_simulated_card_keeps_its_warnings_and_shows_subgroups_and_utility(retrain_root: Path) -> None:
    card = (retrain_root / "gmed-driver" / "1.0.0" / "MODEL_CARD.md").read_text()
    assert "Trained on simulated data" in card and "retrained on local outcomes" in card
    for heading in ("## Intended use", "## Outcome", "## Data", "## Missing data",
                    "## Performance", "### By subgroup", "## Clinical utility", "## Thresholds",
                    "## Limitations", "## When to stop using it", "## TRIPOD+AI items"):
        assert heading in card
    assert "| sex: female |" in card and "| 20% |" in card


def test_a_model_trained_on_local_outcomes_says_so(retrain_data: Path, tmp_path: Path) -> None:
    frame = pd.read_parquet(retrain_data / "train_a.parquet").head(4000)
    local = frame.drop(columns=["p_true", "weak", "alt_cause", "hip_driver_true", "is_control"])
    local.to_csv(tmp_path / "clinic.csv", index=False)
    directory = train(tmp_path / "clinic.csv", tmp_path / "m" / "2.0.0", seed=1, num_threads=1,
                      reps=20)
    model = cds.load_model(directory)
    assert model.trained_on.startswith("local outcomes (clinic.csv")
    card = (directory / "MODEL_CARD.md").read_text()
    assert "Retrained on local outcomes" in card and "Trained on simulated data" not in card
    assert _facts(directory)["data"]["simulated"] is False
