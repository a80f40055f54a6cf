"""``--tune``, ``--engine dask`` and ``cds score``: bounded search, and the Dask paths agreeing
with the single-machine ones on a 2-worker LocalCluster."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cds
from cds.features import MODEL_COLUMNS
from training.dataset import prepare
from training.distributed import dask_client, fit_dask, logloss_by_trees
from training.fit import fit
from training.pipeline import complaint_strata
from training.score import score, score_frame
from training.simulate import simulate
from training.tune import DEFAULT, Budget, candidates

from .test_retrain_fixtures import retrain_data, retrain_root

__all__ = ["retrain_data", "retrain_root"]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dask_client(workers=2, processes=False) as c:
            yield c


def test_tuning_candidates_start_with_the_default_and_are_distinct() -> None:
    drawn = candidates(Budget(trials=8), seed=1)
    assert drawn[0] == DEFAULT and len(drawn) == 8
    assert len({tuple(d.values()) for d in drawn}) == 8
    assert all(0.03 <= d["learning_rate"] <= 0.2 for d in drawn)
    assert candidates(Budget(trials=8), seed=1) == drawn


def test_a_spent_time_budget_stops_the_search_after_the_first_trial() -> None:
    ds = prepare(simulate(3000, 51))
    lines: list[str] = []
    fitted = fit(ds.X, ds.y, complaint_strata(ds), seed=1, num_threads=1,
                 candidates=candidates(Budget(trials=5), 1), deadline=0.0, progress=lines.append)
    assert len(fitted.selection) == 1 and "time budget spent after 1 of 5" in lines[-1]
    assert lines[0].startswith("  candidate 1/5: num_leaves=8")


def test_cli_train_with_tune_records_the_search(retrain_data: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main

    out = tmp_path / "gmed-driver" / "3.0.0"
    assert main(["train", "--data", str(retrain_data / "train_a.parquet"), "--out", str(out),
                 "--tune", "--tune-trials", "3", "--threads", "1"]) == 0
    assert "candidate 3/3" in capsys.readouterr().err
    meta = cds.load_model(out).metadata
    assert meta["tuning"]["trials"] == 3 and len(meta["size_selection"]) == 3


def test_prefix_losses_end_at_the_full_model() -> None:
    ds = prepare(simulate(2000, 52))
    fitted = fit(ds.X, ds.y, complaint_strata(ds), seed=1, num_threads=1, leaves=(4,))
    p = 1 / (1 + np.exp(-fitted.booster.predict(ds.X, raw_score=True)))
    full = -np.mean(ds.y * np.log(p) + (1 - ds.y) * np.log(1 - p))
    assert logloss_by_trees(fitted.booster, ds.X, ds.y)[-1] == pytest.approx(full, rel=1e-9)


def test_dask_training_agrees_with_one_machine(client: Any) -> None:
    ds = prepare(simulate(4000, 53))
    test = prepare(simulate(2000, 54))
    local = fit(ds.X, ds.y, complaint_strata(ds), seed=2, num_threads=1, leaves=(8,))
    spread = fit_dask(ds.X, ds.y, complaint_strata(ds), client=client, seed=2, leaves=(8,),
                      max_rounds=150)
    a = local.booster.predict(test.X, raw_score=True)
    b = spread.booster.predict(test.X, raw_score=True)
    assert np.corrcoef(a, b)[0, 1] > 0.98
    assert abs(spread.selection[0]["trees"] - local.selection[0]["trees"]) <= 50
    assert spread.split_sizes == local.split_sizes


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("batch")
    frame = simulate(1200, 55).drop(columns=["hip_driver"])
    frame["age_years"] = frame["age_years"].astype(str)  # as a CSV export would hold it
    frame.loc[5, "age_years"] = "unknown"
    for i in range(3):
        frame.iloc[400 * i:400 * (i + 1)].to_parquet(directory / f"part-{i}.parquet", index=False)
    return directory


def test_scoring_gives_probabilities_and_exact_contributions(retrain_root: Path, batch: Path) -> None:
    model = cds.load_model("production", root=retrain_root)
    frame = pd.read_parquet(batch / "part-0.parquet")
    scored = score_frame(model, frame)
    assert len(scored) == len(frame) and list(scored["patient_id"]) == list(frame["patient_id"])
    ok = scored["reason"] == ""
    contrib = scored[[f"contribution_{c}" for c in MODEL_COLUMNS]].to_numpy()
    np.testing.assert_allclose(contrib[ok].sum(axis=1) + scored.loc[ok, "base_value"],
                               scored.loc[ok, "raw_score"], atol=1e-9)
    np.testing.assert_allclose(scored.loc[ok, "probability"],
                               model.probability(scored.loc[ok, "raw_score"].to_numpy()))
    assert scored.loc[5, "reason"] == "age_years: type" and np.isnan(scored.loc[5, "probability"])
    flagged = frame["rf_trauma_rapid_swelling"] == 1
    assert (scored.loc[flagged, "reason"] == "red_flag: refer").all()


def test_dask_scoring_matches_single_process(retrain_root: Path, batch: Path, client: Any,
                                             tmp_path: Path) -> None:
    scheduler = client.scheduler.address
    local = score("production", batch, tmp_path / "local", root=retrain_root)
    spread = score("production", batch, tmp_path / "dask", engine="dask", scheduler=scheduler,
                   root=retrain_root)
    assert local["rows"] == spread["rows"] == 1200
    a = pd.read_parquet(tmp_path / "local").sort_values("patient_id").reset_index(drop=True)
    b = pd.read_parquet(tmp_path / "dask").sort_values("patient_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b[a.columns], check_dtype=False)


def test_cli_train_on_a_local_dask_cluster(retrain_data: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main

    out = tmp_path / "gmed-driver" / "4.0.0"
    assert main(["train", "--data", str(retrain_data / "train_a.parquet"), "--out", str(out),
                 "--engine", "dask", "--tune", "--tune-trials", "1"]) == 0
    assert "dask candidate 1/1 on 2 workers: num_leaves=8" in capsys.readouterr().err
    model = cds.load_model(out)
    assert model.metadata["engine"] == "dask" and model.metadata["tuning"]["trials"] == 1


def test_dask_scoring_reports_each_partition_as_it_finishes(retrain_root: Path, batch: Path,
                                                            client: Any, tmp_path: Path) -> None:
    """Issue 13: progress while partitions are scored under Dask, one line per partition."""
    said: list[str] = []
    spread = score("production", batch, tmp_path / "dask", engine="dask",
                   scheduler=client.scheduler.address, root=retrain_root, progress=said.append)
    parts = sorted((tmp_path / "dask").glob("part.*.parquet"))
    done = [s for s in said if s.strip().startswith("scored partition ")]
    assert len(done) == len(parts) >= 1
    assert done[-1].strip().startswith(f"scored partition {len(parts)}/{len(parts)} "
                                       f"({spread['rows']} rows so far)")
