"""Batch scoring (``cds score``) is columnwise and chunked, and answers exactly as row by row.

The batch path validates, derives and explains whole frames and writes Parquet in chunks; every
row's answer must be the one that row gets when scored alone: same reason (row number kept by
order), same warning, same raw score (the model's own, to 1e-9), contributions and band.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cds
from training.score import score_frame
from training.score_files import score_file
from training.simulate import simulate

ROWS = 240


@pytest.fixture(scope="module")
def messy() -> pd.DataFrame:
    """Simulated rows with bad ones mixed in: text categories, unreadable and out-of-range
    numbers, red flags, red-flag questions not asked, no complaint."""
    frame = simulate(ROWS, 11).drop(columns=["hip_driver"]).reset_index(drop=True)
    frame["sex"] = frame["sex"].astype(object)
    frame.loc[3::17, "sex"] = "Female"
    frame.loc[5::23, "sex"] = "F"
    frame.loc[7::29, "sex"] = "unknown"  # not a contract value: a bad row
    frame["age_years"] = frame["age_years"].astype(object)
    frame.loc[9::31, "age_years"] = "abc"  # not a number: a bad row
    frame.loc[11::19, "pain_nrs"] = 99.0  # out of range: a bad row
    frame.loc[13::13, "rf_fever"] = 1.0  # refer, never score
    frame.loc[2::11, ["rf_fever", "rf_night_pain"]] = np.nan  # not asked: a warning
    frame["complaint"] = frame["complaint"].astype(object)
    frame.loc[4::37, "complaint"] = None  # nothing to score
    return frame


def _row_by_row(model: cds.Model, frame: pd.DataFrame) -> pd.DataFrame:
    rows = [score_frame(model, frame.iloc[[i]]) for i in range(len(frame))]
    return pd.concat(rows, ignore_index=True)


def test_batch_scoring_equals_scoring_each_row_alone(tiny_model: cds.Model,
                                                     messy: pd.DataFrame) -> None:
    batch = score_frame(tiny_model, messy)
    alone = _row_by_row(tiny_model, messy)
    assert len(batch) == len(messy)
    reasons = batch["reason"].astype(str)
    assert (reasons.str.contains("sex: ")).any() and (reasons.str.contains("age_years: ")).any()
    assert (reasons == "red_flag: refer").any() and (reasons == "no complaint").any()
    assert batch["warning"].notna().any() and (batch["reason"] == "").any()
    for column in batch.columns:
        left, right = batch[column], alone[column]
        if pd.api.types.is_float_dtype(left):
            np.testing.assert_allclose(left.to_numpy(), right.to_numpy(dtype=float),
                                       rtol=0, atol=1e-12, err_msg=column)
        else:
            assert left.astype(object).where(left.notna(), None).tolist() == \
                right.astype(object).where(right.notna(), None).tolist(), column


def test_batch_raw_score_is_the_models_own(tiny_model: cds.Model, messy: pd.DataFrame) -> None:
    """The raw score is taken as the sum of the exact contributions: it must be the one the
    model predicts, row for row."""
    from cds.intake import rows_from_frame
    from training.schema import canonical
    from training.tidy import tidy

    batch = score_frame(tiny_model, messy)
    scored = (batch["reason"] == "").to_numpy()
    clean = canonical(tidy(messy, dedupe=False).frame).loc[scored]
    expected = tiny_model.predict_raw(rows_from_frame(clean))
    np.testing.assert_allclose(batch.loc[scored, "raw_score"].to_numpy(), expected,
                               rtol=0, atol=1e-9)
    bands = [tiny_model.band(float(p)) for p in batch.loc[scored, "probability"]]
    assert batch.loc[scored, "band"].tolist() == bands


def test_a_file_scored_in_chunks_equals_the_file_scored_whole(tiny_model: cds.Model,
                                                              messy: pd.DataFrame,
                                                              tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    frame = messy.astype({"sex": "string", "age_years": "string", "complaint": "string"})
    frame.to_parquet(source, index=False)
    with ThreadPoolExecutor(max_workers=1) as pool:
        count = score_file(tiny_model, source, tmp_path / "out.parquet", None, pool, rows=50)
    assert count == len(frame)
    written = pd.read_parquet(tmp_path / "out.parquet")
    whole = score_frame(tiny_model, pd.read_parquet(source))
    pd.testing.assert_frame_equal(written, whole, check_dtype=False)


def test_a_dask_task_explains_on_one_thread(tiny_model: cds.Model, messy: pd.DataFrame,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The cluster's workers are the parallelism: a task that also explained on every CPU ran
    workers x CPUs threads on CPUs cores (2 workers on 2 cores were no faster than 1)."""
    import training.score as score_module

    asked: list[int | None] = []
    explain = tiny_model.contributions

    def contributions(X: np.ndarray, *, n_threads: int | None = None) -> np.ndarray:
        asked.append(n_threads)
        return explain(X, n_threads=n_threads)

    monkeypatch.setattr(tiny_model, "contributions", contributions)
    monkeypatch.setitem(score_module._MODELS, "tiny", tiny_model)
    scored = score_module._score_partition(messy, "tiny")
    assert asked == [1]
    pd.testing.assert_frame_equal(scored, score_frame(tiny_model, messy))
    assert asked == [1, None]  # in process: every CPU
