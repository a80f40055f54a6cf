"""The feature contract: one table, everything derived from it."""

from __future__ import annotations

import dataclasses
import re

import jsonschema
import pytest

from cds import features as fx
from cds.errors import InvalidRecord
from cds.validate import validate_record

from .conftest import EXAMPLES, load_example


def test_every_feature_name_is_clinical_and_carries_its_unit() -> None:
    suffix = {"N·m/kg": "_nm_per_kg", "°": "_deg", "%": "_pct", "months": "_months",
              "years": "_years", "kg/m²": "_kg_m2", "% of norm": "_pct_of_norm", "N": "_force_n",
              "kgf": "_force_kgf", "m": "_m", "kg": "_kg"}
    for f in fx.FEATURES:
        assert re.fullmatch(r"[a-z][a-z0-9_]+", f.name), f.name
        if f.unit in suffix:
            assert f.name.endswith(suffix[f.unit]), f.name


def test_every_feature_declares_label_group_and_coding() -> None:
    for f in fx.FEATURES:
        assert f.label and f.group in fx.GROUPS
        assert f.coding.system in (fx.LOINC, fx.SNOMED, fx.LOCAL_SYSTEM)
        if f.kind in ("number", "integer"):
            assert f.minimum is not None and f.maximum is not None and f.minimum < f.maximum
        if f.kind == "category":
            assert f.allowed and (not f.allowed_labels or len(f.allowed_labels) == len(f.allowed))


def test_three_groups_follow_the_care_setting() -> None:
    groups = {g: {f.name for f in fx.FEATURES if f.group == g} for g in fx.GROUPS}
    assert "pain_nrs" in groups["intake"] and "rf_night_pain" in groups["intake"]
    assert {"hip_abduction_left_nm_per_kg", "trendelenburg_sign"} <= groups["exam"]
    assert "running_pelvic_drop_deg" in groups["movement"]


def test_model_columns_and_monotone_constraints_align() -> None:
    assert len(fx.monotone_constraints()) == len(fx.MODEL_COLUMNS)
    assert fx.MODEL_COLUMNS[0] == "complaint"
    assert not any(f.name in fx.MODEL_COLUMNS for f in fx.RED_FLAGS)
    by_col = dict(zip(fx.MODEL_COLUMNS, fx.monotone_constraints(), strict=True))
    assert by_col["hip_abduction_pct_of_norm"] == -1
    assert by_col["trendelenburg_sign"] == 1
    assert by_col["straight_leg_raise_positive"] == -1
    assert all(by_col[c] == 0 for c in fx.CATEGORICAL_COLUMNS)


def test_json_schema_is_derived_from_the_table() -> None:
    schema = fx.record_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == {"patient_id"} | {f.name for f in fx.record_fields()}
    assert schema["properties"]["pain_nrs"]["maximum"] == fx.BY_NAME["pain_nrs"].maximum
    assert schema["properties"]["complaints"]["items"]["enum"] == list(fx.COMPLAINTS)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_examples_satisfy_the_json_schema(path) -> None:  # type: ignore[no-untyped-def]
    record = load_example(path.stem)
    jsonschema.validate(record, fx.record_json_schema())
    validate_record(record)


BAD_RECORDS = [
    {"complaints": ["pfp"], "age_years": 11, "sex": "female"},
    {"complaints": ["pfp"], "age_years": 30, "sex": "female", "pain_nrs": 11},
    {"complaints": ["pfp"], "age_years": 30, "sex": "female", "pain_nrs": 4.5},
    {"complaints": ["pfp"], "age_years": 30, "sex": "other"},
    {"complaints": [], "age_years": 30, "sex": "male"},
    {"complaints": ["pfp", "pfp"], "age_years": 30, "sex": "male"},
    {"complaints": ["ankle"], "age_years": 30, "sex": "male"},
    {"complaints": ["lbp"], "age_years": 30, "sex": "male", "trendelenburg_sign": 1},
    {"complaints": ["lbp"], "age_years": "30", "sex": "male"},
    {"complaints": ["lbp"], "age_years": 30, "sex": "male", "shoe_size": 9},
    {"age_years": 30, "sex": "male"},
]


@pytest.mark.parametrize("record", BAD_RECORDS)
def test_validator_and_json_schema_reject_the_same_records(record) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(record, fx.record_json_schema())
    with pytest.raises(InvalidRecord):
        validate_record(record)


def test_contract_hash_changes_when_the_model_would(monkeypatch: pytest.MonkeyPatch) -> None:
    before = fx.contract_hash()
    last = fx.FEATURES[-1]
    monkeypatch.setattr(fx, "FEATURES", (*fx.FEATURES[:-1], dataclasses.replace(last, monotone=0)))
    assert fx.contract_hash() != before


def test_contract_hash_ignores_wording(monkeypatch: pytest.MonkeyPatch) -> None:
    before = fx.contract_hash()
    last = fx.FEATURES[-1]
    reworded = dataclasses.replace(last, label="Reworded", reference="1-2")
    monkeypatch.setattr(fx, "FEATURES", (*fx.FEATURES[:-1], reworded))
    assert fx.contract_hash() == before


def test_contract_hash_ignores_red_flag_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    # red-flag questions never feed the model: adding one must not retire a trained model
    before = fx.contract_hash()
    extra = dataclasses.replace(fx.RED_FLAGS[0], name="rf_new_question", label="A new question")
    monkeypatch.setattr(fx, "FEATURES", (*fx.FEATURES, extra))
    assert fx.contract_hash() == before


def test_contract_hash_changes_with_applicability(monkeypatch: pytest.MonkeyPatch) -> None:
    before = fx.contract_hash()
    table = tuple(dataclasses.replace(f, complaints=fx.COMPLAINTS) if f.name == "knee_effusion"
                  else f for f in fx.FEATURES)
    monkeypatch.setattr(fx, "FEATURES", table)
    assert fx.contract_hash() != before


def test_contract_hash_changes_with_the_strength_norms(monkeypatch: pytest.MonkeyPatch) -> None:
    from cds import norms

    before = fx.contract_hash()
    shifted = dataclasses.replace(norms.ABDUCTION, log_sd=0.3)
    monkeypatch.setitem(norms.NORMS, "hip_abduction", shifted)
    assert fx.contract_hash() != before
