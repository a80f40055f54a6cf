"""Data in for retraining: the pandera schema from the contract, quarantine, wrong columns/units,
CSV, Parquet, FHIR R4 Bulk NDJSON and the service's store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cds.features import BY_NAME, LOCAL_SYSTEM, record_fields
from cds.fhir import COMPLAINT_SYSTEM, QUESTIONNAIRE_URL, answer_system
from training.dataset import load, quarantine_reasons
from training.schema import LABEL, training_columns, training_schema
from training.simulate import simulate
from training.sources import OUTCOME_CODING, read_source
from training.validation import DataRejected, validate


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate(1500, 21)


def test_schema_has_a_column_and_the_rules_of_every_contract_field() -> None:
    schema = training_schema()
    for name, f in training_columns().items():
        rules = {c.name for c in schema.columns[name].checks}
        if f.kind in ("number", "integer"):
            assert {"type", "unit"} <= rules
            assert ("minimum" in rules) == (f.minimum is not None)
            assert ("maximum" in rules) == (f.maximum is not None)
        assert ("required" in rules) == (f.required and f.role != "rows")
    assert LABEL in schema.columns


def test_range_limits_come_from_the_contract(cohort: pd.DataFrame) -> None:
    frame = cohort.head(4).copy()
    frame["age_years"] = [BY_NAME["age_years"].maximum, BY_NAME["age_years"].maximum + 1,
                          BY_NAME["age_years"].minimum, BY_NAME["age_years"].minimum - 1]
    checked = validate(frame)
    assert sorted(checked.quarantine.index[checked.quarantine["reason"].str.contains("age_years")]) == [1, 3]


def test_every_failure_is_reported_at_once_by_column_and_rule(cohort: pd.DataFrame) -> None:
    frame = cohort.copy()
    frame["age_years"] = frame["age_years"].astype(object)
    frame.loc[3, "age_years"] = "forty"
    frame.loc[4, "age_years"] = 11  # below the accepted 12-90
    frame["sex"] = frame["sex"].astype(object)
    frame.loc[4, "sex"] = "F"
    frame.loc[5, "pain_nrs"] = 4.5
    frame.loc[6, "sex"] = None
    checked = validate(frame)
    found = {(f["column"], f["rule"]): f["rows"] for f in checked.failures}
    assert found == {("age_years", "type"): 1, ("age_years", "minimum"): 1, ("sex", "enum"): 1,
                     ("pain_nrs", "integer"): 1, ("sex", "required"): 1}
    reasons = checked.quarantine["reason"]
    assert reasons[4] == "age_years: minimum; sex: enum"
    assert reasons[3] == "age_years: type" and reasons[5] == "pain_nrs: integer"
    assert checked.summary()["rejected"] == 4


def test_every_row_is_accounted_for(cohort: pd.DataFrame) -> None:
    frame = cohort.copy()
    frame.loc[:9, LABEL] = np.nan
    frame.loc[10, "bmi_kg_m2"] = 99.0
    checked = validate(frame)
    s = checked.summary()
    assert s["accepted"] + s["rejected"] + sum(s["excluded"].values()) == len(frame)
    assert len(checked.quarantine) == len(frame) - s["accepted"]
    assert s["excluded"]["no_outcome"] == 10 and s["excluded"]["red_flag"] > 0


def test_wrong_and_missing_columns_stop_naming_them(cohort: pd.DataFrame) -> None:
    frame = cohort.rename(columns={"bmi_kg_m2": "bmi_kg"}).drop(columns=["sex"])
    with pytest.raises(DataRejected) as e:
        validate(frame)
    text = str(e.value)
    assert "'sex' is required and missing" in text and "did you mean 'bmi_kg_m2'" in text


def test_a_column_in_another_unit_stops_before_training(cohort: pd.DataFrame, tmp_path: Path) -> None:
    frame = cohort.copy()
    frame["single_leg_squat_pelvic_drop_deg"] = np.deg2rad(frame["single_leg_squat_pelvic_drop_deg"])
    frame["hip_abduction_right_nm_per_kg"] = frame["hip_abduction_right_nm_per_kg"] * 70  # N·m
    data = tmp_path / "radians.parquet"
    frame.to_parquet(data)
    from training.pipeline import train

    with pytest.raises(DataRejected) as e:
        train(data, tmp_path / "models" / "x")
    assert "single_leg_squat_pelvic_drop_deg': unit" in str(e.value)
    assert "hip_abduction_right_nm_per_kg': unit" in str(e.value)
    assert not (tmp_path / "models").exists()


def test_simulated_data_passes_every_unit_check() -> None:
    checked = validate(simulate(4000, 5, control_fraction=0.1))
    assert checked.failures == []


def test_csv_with_text_booleans_and_quarantine_file(cohort: pd.DataFrame, tmp_path: Path) -> None:
    frame = cohort.head(300).copy()
    frame["lateral_hip_pain"] = frame["lateral_hip_pain"].map({1.0: "yes", 0.0: "no"})
    frame.loc[7, "lateral_hip_pain"] = "sometimes"
    data = tmp_path / "clinic.csv"
    frame.to_csv(data, index=False)
    ds = load(data, quarantine=tmp_path / "q.csv")
    reasons = quarantine_reasons(tmp_path / "q.csv")
    assert "lateral_hip_pain: type" in set(reasons)
    assert ds.validation["rejected"] == 1
    kept = frame.drop(index=7)
    assert set(ds.frame["lateral_hip_pain"].dropna().unique()) <= {0.0, 1.0}
    assert len(ds.y) + ds.validation["excluded"]["red_flag"] == len(kept)


def test_parquet_quarantine_keeps_raw_text(cohort: pd.DataFrame, tmp_path: Path) -> None:
    frame = cohort.head(200).copy()
    frame["side"] = frame["side"].astype(object)
    frame.loc[2, "side"] = "Middle"  # ("L" now reads as left: training.values)
    frame.to_parquet(tmp_path / "d.parquet")
    load(tmp_path / "d.parquet", quarantine=tmp_path / "q.parquet")
    q = pd.read_parquet(tmp_path / "q.parquet")
    assert q.loc[2, "side"] == "Middle" and q.loc[2, "reason"] == "side: enum"


# ------------------------------------------------------------------------------ FHIR NDJSON


def _fhir_patient(pid: str, row: pd.Series, *, outcome: bool | None, torque_unit: str = "N.m/kg"
                  ) -> list[dict[str, Any]]:
    """One simulated row as a Bulk export would hold it: Patient, Condition, questionnaire
    answers, a dynamometry Observation and the outcome Observation."""
    complaint = str(row["complaint"])
    answers = []
    for f in record_fields():
        value = row.get(f.name)
        if f.role == "rows" or f.name in ("age_years", "sex", "hip_abduction_left_nm_per_kg") \
                or value is None or pd.isna(value):
            continue
        if f.kind == "boolean":
            answer: dict[str, Any] = {"valueBoolean": bool(value)}
        elif f.kind == "category":
            answer = {"valueCoding": {"system": answer_system(f), "code": str(value)}}
        elif f.kind == "integer":
            answer = {"valueInteger": int(value)}
        else:
            answer = {"valueDecimal": float(value)}
        answers.append({"linkId": f.name, "answer": [answer]})
    subject = {"reference": f"Patient/{pid}"}
    when = "2026-03-02T10:00:00Z"
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "gender": str(row["sex"]),
         "birthDate": f"{2026 - int(row['age_years']) - 1}-06-01"},
        {"resourceType": "Condition", "id": f"{pid}-c", "subject": subject,
         "clinicalStatus": {"coding": [{"code": "active"}]},
         "code": {"coding": [{"system": COMPLAINT_SYSTEM, "code": complaint}]}},
        {"resourceType": "QuestionnaireResponse", "id": f"{pid}-q", "status": "completed",
         "questionnaire": QUESTIONNAIRE_URL, "subject": subject, "authored": when,
         "item": answers},
    ]
    left = BY_NAME["hip_abduction_left_nm_per_kg"]
    if not pd.isna(row[left.name]):
        resources.append({"resourceType": "Observation", "id": f"{pid}-hl", "status": "final",
                          "subject": subject, "effectiveDateTime": when,
                          "code": {"coding": [{"system": left.coding.system, "code": left.coding.code}]},
                          "valueQuantity": {"value": float(row[left.name]),
                                            "system": "http://unitsofmeasure.org",
                                            "code": torque_unit}})
    if outcome is not None:
        resources.append({"resourceType": "Observation", "id": f"{pid}-o", "status": "final",
                          "subject": subject, "effectiveDateTime": "2026-04-20",
                          "focus": [{"reference": f"Condition/{pid}-c"}],
                          "code": {"coding": [{"system": OUTCOME_CODING[0], "code": OUTCOME_CODING[1]}]},
                          "valueBoolean": outcome})
    return resources


def _write_ndjson(directory: Path, resources: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for kind in ("Patient", "Condition", "Observation", "QuestionnaireResponse"):
        lines = [json.dumps(r) for r in resources if r["resourceType"] == kind]
        (directory / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
    return directory


def test_fhir_bulk_export_maps_to_training_rows(cohort: pd.DataFrame, tmp_path: Path) -> None:
    rows = cohort[cohort["rf_trauma_rapid_swelling"] == 0].head(40)
    resources = []
    for i, (_, row) in enumerate(rows.iterrows()):
        resources += _fhir_patient(f"p{i}", row, outcome=bool(row[LABEL]))
    source = read_source(_write_ndjson(tmp_path / "export", resources))
    frame = source.frame.set_index("patient_id").loc[[f"p{i}" for i in range(len(rows))]]
    assert list(frame["complaint"]) == list(rows["complaint"].astype(str))
    assert list(frame[LABEL]) == list(rows[LABEL])
    assert list(frame["age_years"]) == list(rows["age_years"])
    np.testing.assert_allclose(frame["hip_abduction_left_nm_per_kg"].to_numpy(float),
                               rows["hip_abduction_left_nm_per_kg"].to_numpy(float), rtol=1e-6)
    assert OUTCOME_CODING[0] == LOCAL_SYSTEM


def test_fhir_patient_in_a_wrong_unit_is_quarantined_with_the_reason(cohort: pd.DataFrame,
                                                                       tmp_path: Path) -> None:
    exam = cohort[cohort["hip_abduction_left_nm_per_kg"].notna()].head(3)
    resources = []
    for i, (_, row) in enumerate(exam.iterrows()):
        resources += _fhir_patient(f"p{i}", row, outcome=True,
                                   torque_unit="N.m" if i == 0 else "N.m/kg")
    resources += _fhir_patient("nolabel", exam.iloc[0], outcome=None)
    ds = load(_write_ndjson(tmp_path / "export", resources), quarantine=tmp_path / "q.csv")
    q = pd.read_csv(tmp_path / "q.csv")
    assert q.loc[q["patient_id"] == "p0", "reason"].item() == "fhir: hip_abduction_left_nm_per_kg: unit"
    assert q.loc[q["patient_id"] == "nolabel", "reason"].item() == "excluded: no_outcome"
    assert sorted(ds.frame["patient_id"]) == ["p1", "p2"]


# ------------------------------------------------------------------------------ the store


def test_store_assessments_joined_with_latest_outcomes(cohort: pd.DataFrame, tmp_path: Path) -> None:
    from service.store import SQLStore

    url = f"sqlite:///{tmp_path / 'gmed.sqlite3'}"
    store = SQLStore(url, b"secret")
    rows = cohort[cohort["rf_trauma_rapid_swelling"] == 0].head(5)
    for i, (_, row) in enumerate(rows.iterrows()):
        record = {f.name: (row[f.name].item() if hasattr(row[f.name], "item") else row[f.name])
                  for f in record_fields() if f.role != "rows" and not pd.isna(row[f.name])}
        record = {k: (bool(v) if BY_NAME[k].kind == "boolean" else v) for k, v in record.items()}
        record["complaints"] = [str(row["complaint"])]
        result = {"model": {"id": "gmed-driver", "version": "0.0.1"}, "action": "score"}
        aid = store.save_assessment(source="api", inputs=record, result=result,
                                    patient_ref=store.pseudonym(f"p{i}"), caller="test")
        store.save_outcome(assessment_id=aid, complaint=str(row["complaint"]),
                           hip_driver=not bool(row[LABEL]), confirmed_on=None, caller="t",
                           patient_ref=None)
        store.save_outcome(assessment_id=aid, complaint=str(row["complaint"]),
                           hip_driver=bool(row[LABEL]), confirmed_on=None, caller="t",
                           patient_ref=None)
    ds = load(url)
    assert len(ds.y) == 5 and ds.validation["superseded_outcomes"] == 5
    assert sorted(ds.y) == sorted(rows[LABEL])
    assert "secret" not in ds.description and ds.description.startswith("store sqlite:///")


def test_a_database_without_the_stores_tables_is_named_not_the_store(tmp_path: Path) -> None:
    import sqlite3

    from cds.errors import UserError

    with sqlite3.connect(tmp_path / "other.sqlite3") as db:
        db.execute("CREATE TABLE assessments (id TEXT)")  # one of the two tables only
    with pytest.raises(UserError, match="not the service's store"):
        read_source(f"sqlite:///{tmp_path / 'other.sqlite3'}")


def test_the_store_is_read_through_the_declared_tables() -> None:
    """training builds the store's tables from the one declaration the service writes with
    (:mod:`cds.store_schema`): the same tables, columns and types."""
    from sqlalchemy import MetaData

    from cds.store_schema import build
    from service.store import metadata

    ours = {name: [(c.name, str(c.type)) for c in t.columns] for name, t in build(MetaData()).items()}
    assert ours == {t.name: [(c.name, str(c.type)) for c in t.columns]
                    for t in metadata.tables.values()}


def test_cli_train_on_wrong_columns_exits_2_and_writes_nothing(cohort: pd.DataFrame, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main

    data = tmp_path / "bad.csv"
    cohort.rename(columns={"pain_nrs": "pain_nrs_score"}).drop(columns=[LABEL]).to_csv(data, index=False)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "m" / "1")]) == 2
    err = capsys.readouterr().err
    assert "'hip_driver' is required and missing" in err and "did you mean 'pain_nrs'" in err
    assert not (tmp_path / "m").exists()


def test_cli_train_reports_counts_and_writes_the_quarantine(cohort: pd.DataFrame, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main

    frame = cohort.copy()
    frame.loc[0, "bmi_kg_m2"] = 80.0
    frame.to_parquet(tmp_path / "d.parquet")
    assert main(["train", "--data", str(tmp_path / "d.parquet"), "--out",
                 str(tmp_path / "m" / "1"), "--quarantine", str(tmp_path / "q.csv"),
                 "--threads", "1", "--accept-small-sample"]) == 0
    err = capsys.readouterr().err
    assert "1500 rows read:" in err and "1 rejected" in err
    assert "bmi_kg_m2: maximum failed on 1 row(s)" in err
    assert quarantine_reasons(tmp_path / "q.csv").iloc[0] == "bmi_kg_m2: maximum"
