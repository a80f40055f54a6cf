"""Every ``cds`` command answers a user's mistake with exit status 2 and a message naming the
file, column or row and the rule: never a traceback (``main`` raising is a traceback).

Each failure quoted in issue #13 has its test here (``test_issue13_...``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cds.features import BY_NAME, record_fields
from training.cli import main
from training.schema import LABEL
from training.simulate import simulate

from .conftest import EXAMPLES


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    frame = simulate(1500, 41)
    return frame[frame["complaint"].notna()].reset_index(drop=True)


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------------------ assess


@pytest.mark.parametrize(("content", "words"), [
    (None, "no such file"),
    ("", "empty"),
    ("{not json", "not JSON"),
    ("[1, 2]", "is a JSON object"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_assess_bad_input_file_exits_2_naming_the_file(
        tmp_path: Path, tiny_model_dir: Path, content: str | bytes | None, words: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "record.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert main(["assess", "--input", str(path), "--model", str(tiny_model_dir)]) == 2
    err = _err(capsys)
    assert str(path) in err and words in err


def test_issue13_assess_input_nope_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assess", "--input", "/nope.json"]) == 2
    assert "/nope.json: no such file" in _err(capsys)


def test_assess_a_directory_or_an_unknown_model_exits_2(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assess", "--input", str(tmp_path)]) == 2
    assert "a directory" in _err(capsys)
    assert main(["assess", "--input", str(EXAMPLES / "cyclist_itbs.json"), "--model", "nope"]) == 2
    assert "No model 'nope'" in _err(capsys)


# ------------------------------------------------------------------------------ simulate


@pytest.mark.parametrize(("args", "words"), [
    (["--n", "0"], "argument --n: at least 1, not 0"),
    (["--n", "ten"], "argument --n: a whole number, not 'ten'"),
    (["--n", "5", "--controls", "2"], "argument --controls: between 0 and 1, not 2"),
])
def test_simulate_bad_numbers_exit_2(tmp_path: Path, args: list[str], words: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["simulate", *args, "--seed", "1", "--out", str(tmp_path / "x.parquet")])
    assert e.value.code == 2
    assert words in _err(capsys)


# ------------------------------------------------------------------------------ train


def _train(data: Path, tmp_path: Path) -> int:
    return main(["train", "--data", str(data), "--out", str(tmp_path / "m" / "gmed-driver" / "9.0.0"),
                 "--threads", "1"])


def test_train_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(tmp_path / "nope.csv", tmp_path) == 2
    assert "nope.csv: no such file or directory" in _err(capsys)


@pytest.mark.parametrize(("name", "content", "words"), [
    ("data.xlsx", b"PK\x03\x04", "expected .csv"),
    ("data.csv", b"PK\x03\x04\x00\x00binary", "binary, not a CSV file"),
    ("data.parquet", b"a,b\n1,2\n", "not a readable Parquet file"),
    ("data.csv", b"", "empty"),
    ("data.csv", b"complaint,age_years,sex,hip_driver\n", "no rows"),
    ("data.csv", b'a,b\n1,"2\n', "not a well-formed"),
])
def test_train_wrong_format_or_empty_file_exits_2(tmp_path: Path, name: str, content: bytes,
                                                  words: str, capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    (tmp_path / name).write_bytes(content)
    assert _train(tmp_path / name, tmp_path) == 2
    err = _err(capsys)
    assert name in err and words in err
    assert not (tmp_path / "m").exists()


def test_train_without_outcomes_exits_2(cohort: pd.DataFrame, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    cohort.assign(**{LABEL: None}).to_csv(tmp_path / "d.csv", index=False)
    assert _train(tmp_path / "d.csv", tmp_path) == 2
    err = _err(capsys)
    assert "no row can be learned from" in err and " no outcome" in err


def test_train_with_one_outcome_class_only_exits_2(cohort: pd.DataFrame, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cohort[cohort[LABEL] == 1].to_csv(tmp_path / "d.csv", index=False)
    assert _train(tmp_path / "d.csv", tmp_path) == 2
    assert "every outcome is 1" in _err(capsys)


def test_train_wrong_columns_exits_2_with_did_you_mean(cohort: pd.DataFrame, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    cohort.rename(columns={"age_years": "age_yrs"}).to_csv(tmp_path / "d.csv", index=False)
    assert _train(tmp_path / "d.csv", tmp_path) == 2
    assert "did you mean 'age_years'" in _err(capsys)


def test_issue13_train_on_350_clean_rows_is_refused_not_a_linalg_error(
        cohort: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cohort[cohort["rf_trauma_rapid_swelling"] == 0].head(350).to_csv(tmp_path / "d.csv",
                                                                     index=False)
    assert _train(tmp_path / "d.csv", tmp_path) == 2
    err = _err(capsys)
    assert "350 rows" in err and "events are needed for a model of this size" in err
    assert "cds recalibrate" in err
    assert not (tmp_path / "m" / "gmed-driver" / "9.0.0" / "model.txt").exists()


def test_issue13_train_on_f_m_units_in_cells_and_decimal_commas_says_why(
        cohort: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy = cohort.head(300).copy()
    messy["sex"] = messy["sex"].map({"female": "F", "male": "M"})
    messy["hip_abduction_left_nm_per_kg"] = [f"{v:.2f} Nm/kg" if v == v else ""
                                             for v in messy["hip_abduction_left_nm_per_kg"]]
    messy.to_csv(tmp_path / "d.csv", index=False, sep=";", decimal=",")
    assert _train(tmp_path / "d.csv", tmp_path) == 2
    err = _err(capsys)
    # every value was read (none rejected); what stops 300 rows is their number
    assert "0 rejected" in err and "sex: 300 value(s) read as the contract's" in err
    assert "hip_abduction_left_nm_per_kg" in err and "written in Nm/kg" in err
    assert "events are needed for a model of this size" in err


# ------------------------------------------------------------------------------ evaluate


def _store_with_outcomes(cohort: pd.DataFrame, path: Path, n: int, *, outcomes: bool = True
                         ) -> str:
    from service.store import SQLStore

    url = f"sqlite:///{path}"
    store = SQLStore(url, b"secret")
    rows = cohort[cohort["rf_trauma_rapid_swelling"] == 0].head(n)
    for i, (_, row) in enumerate(rows.iterrows()):
        record = {f.name: (row[f.name].item() if hasattr(row[f.name], "item") else row[f.name])
                  for f in record_fields() if f.role != "rows" and not pd.isna(row[f.name])
                  and f.role != "red_flag"}
        record = {k: (bool(v) if BY_NAME[k].kind == "boolean" else v) for k, v in record.items()}
        record["complaints"] = [str(row["complaint"])]
        aid = store.save_assessment(source="api", inputs=record,
                                    result={"model": {"id": "gmed-driver", "version": "0"},
                                            "action": "score"},
                                    patient_ref=store.pseudonym(f"p{i}"), caller="test")
        if outcomes:
            store.save_outcome(assessment_id=aid, complaint=str(row["complaint"]),
                               hip_driver=bool(row[LABEL]), confirmed_on=None, caller="t",
                               patient_ref=None)
    return url


def test_issue13_evaluate_on_a_store_with_one_outcome_exits_2(
        cohort: pd.DataFrame, tmp_path: Path, tiny_model_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = _store_with_outcomes(cohort, tmp_path / "gmed.sqlite3", 1)
    assert main(["evaluate", "--model", str(tiny_model_dir), "--data", url, "--out",
                 str(tmp_path / "r.html"), "--against", "none", "--reps", "10"]) == 2
    err = _err(capsys)
    assert "1 usable rows" in err and "an evaluation needs at least 10 of each" in err
    assert not (tmp_path / "r.html").exists()


def test_evaluate_on_a_missing_database_or_an_empty_store_exits_2(
        cohort: pd.DataFrame, tmp_path: Path, tiny_model_dir: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["evaluate", "--model", str(tiny_model_dir), "--out", str(tmp_path / "r.html"),
            "--against", "none"]
    assert main([*base, "--data", f"sqlite:///{tmp_path / 'nope.sqlite3'}"]) == 2
    assert "no such database file" in _err(capsys)
    url = _store_with_outcomes(cohort, tmp_path / "empty.sqlite3", 3, outcomes=False)
    assert main([*base, "--data", url]) == 2
    assert "no outcome recorded yet" in _err(capsys)
    assert main([*base, "--data", "ftp://example.org/x.csv"]) == 2
    assert "not a database URL" in _err(capsys)


# ------------------------------------------------------------------------------ score


def test_issue13_score_on_a_folder_of_csvs_scores_them(cohort: pd.DataFrame, tmp_path: Path,
                                                       tiny_model_dir: Path) -> None:
    (tmp_path / "in").mkdir()
    cohort.head(30).drop(columns=[LABEL]).to_csv(tmp_path / "in" / "a.csv", index=False)
    cohort.iloc[30:50].drop(columns=[LABEL]).to_csv(tmp_path / "in" / "b.csv", index=False)
    assert main(["score", "--model", str(tiny_model_dir), "--data", str(tmp_path / "in"),
                 "--out", str(tmp_path / "out")]) == 0
    scored = pd.read_parquet(tmp_path / "out")
    assert len(scored) == 50


def test_score_empty_folder_missing_path_or_dask_on_csv_exits_2(
        tmp_path: Path, tiny_model_dir: Path, cohort: pd.DataFrame,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    base = ["score", "--model", str(tiny_model_dir), "--out", str(tmp_path / "out")]
    assert main([*base, "--data", str(tmp_path / "in")]) == 2
    assert "holds no" in _err(capsys)
    assert main([*base, "--data", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in _err(capsys)
    cohort.head(5).to_csv(tmp_path / "in" / "a.csv", index=False)
    assert main([*base, "--data", str(tmp_path / "in"), "--engine", "dask"]) == 2
    assert "reads Parquet only" in _err(capsys)
    assert not (tmp_path / "out").exists()


def test_score_wrong_columns_exits_2(tmp_path: Path, tiny_model_dir: Path, cohort: pd.DataFrame,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    cohort.head(5).rename(columns={"sex": "gender"}).to_csv(tmp_path / "a.csv", index=False)
    assert main(["score", "--model", str(tiny_model_dir), "--data", str(tmp_path / "a.csv"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "'sex' is required and missing" in _err(capsys)


# ------------------------------------------------------------------------------ recalibrate


def test_recalibrate_on_one_outcome_class_or_too_few_rows_exits_2(
        tmp_path: Path, tiny_model_dir: Path, cohort: pd.DataFrame,
        capsys: pytest.CaptureFixture[str]) -> None:
    cohort[cohort[LABEL] == 0].to_csv(tmp_path / "zeros.csv", index=False)
    assert main(["recalibrate", "--model", str(tiny_model_dir), "--data",
                 str(tmp_path / "zeros.csv")]) == 2
    assert "every outcome is 0" in _err(capsys)
    cohort.head(8).to_csv(tmp_path / "few.csv", index=False)
    assert main(["recalibrate", "--model", str(tiny_model_dir), "--data",
                 str(tmp_path / "few.csv")]) == 2
    assert "recalibration needs at least" in _err(capsys)


# ------------------------------------------------------------------------------ models


def test_models_mistakes_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--root", str(tmp_path)]
    assert main(["models", "promote", *root]) == 2
    assert "give the VERSION" in _err(capsys)
    assert main(["models", "promote", "7.7.7", *root]) == 2
    assert "no version 7.7.7" in _err(capsys)
    assert main(["models", "rollback", *root]) == 2
    assert "no earlier version" in _err(capsys)


def test_writing_where_one_cannot_exits_2_naming_the_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["simulate", "--n", "5", "--seed", "1", "--out",
                 str(tmp_path / "file" / "x.parquet")]) == 2
    assert str(tmp_path / "file") in _err(capsys)


def test_a_bug_still_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import training.simulate

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(training.simulate, "simulate", broken)
    with pytest.raises(ZeroDivisionError):
        main(["simulate", "--n", "5", "--seed", "1", "--out", str(tmp_path / "x.parquet")])


def test_record_examples_still_assess(tiny_model_dir: Path) -> None:
    record = json.loads((EXAMPLES / "cyclist_itbs.json").read_text())
    assert record and main(["assess", "--input", str(EXAMPLES / "cyclist_itbs.json"),
                            "--model", str(tiny_model_dir)]) == 0


def test_issue13_a_whole_column_missing_is_said_not_silent(cohort: pd.DataFrame, tmp_path: Path
                                                           ) -> None:
    from training.dataset import load
    from training.validation import validation_lines

    hips = [c for c in cohort.columns if c.startswith("hip_abduction_")]
    cohort.drop(columns=["bmi_kg_m2", *hips]).to_csv(tmp_path / "d.csv", index=False)
    lines = validation_lines(load(tmp_path / "d.csv").validation)
    assert lines[0].startswith("WARNING: no column of 'Hand-held dynamometry")
    absent = next(line for line in lines if "contract columns absent from the file" in line)
    assert "bmi_kg_m2" in absent and hips[0] in absent


@pytest.mark.parametrize("command", [["columns", "suggest", "/nope.csv"],
                                     ["monitor", "--data", "/nope.csv"]])
def test_columns_and_monitor_on_a_missing_file_exit_2(command: list[str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(command) == 2
    assert "/nope.csv: no such file or directory" in _err(capsys)
