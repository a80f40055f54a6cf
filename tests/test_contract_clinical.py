"""The contract as medicine: applicability per complaint and activity, monotone directions
against the literature, strength relative to the sex- and age-specific norm, adolescents, and
the red-flag list."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import cds
from cds.errors import InvalidRecord
from cds.explain import candidate_procedures, missing_items
from cds.features import (
    BY_NAME,
    COMPLAINTS,
    FEATURES,
    KNEE,
    MODEL_COLUMNS,
    PROFILES,
    RED_FLAGS,
    column_feature,
)
from cds.intake import KGF_TO_N, rows_from_frame, rows_from_record
from cds.norms import abduction_norm_nm_per_kg
from cds.safety import not_applicable
from cds.validate import validate_record

COL = {c: j for j, c in enumerate(MODEL_COLUMNS)}
BASE: dict[str, Any] = {"age_years": 30, "sex": "female", "side": "left"}

# ------------------------------------------------------------------ applicability
# finding -> (complaints it applies to, activity profiles it applies to or None = any)
APPLICABILITY: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "knee_effusion": (KNEE, None),                       # not for low back pain
    "knee_locking_or_giving_way": (KNEE, None),
    "straight_leg_raise_positive": (("lbp",), None),     # not for IT band (or anterior knee) pain
    "leg_pain_below_knee_with_numbness": (("lbp",), None),
    "pain_worse_late_in_activity": (COMPLAINTS, ("runner",)),  # not for cyclists / general
    "running_pelvic_drop_deg": (COMPLAINTS, ("runner",)),
    "training_load_change_recent": (COMPLAINTS, ("runner", "cyclist")),
    "ober_test_positive": (("itbs",), None),             # Ober and Noble: ITBS only
    "noble_compression_positive": (("itbs",), None),
    "knee_extension_nm_per_kg": (("pfp",), None),        # quadriceps: the competing PFP driver
    "foot_posture_index": (KNEE, None),
    "single_leg_squat_knee_fppa_deg": (KNEE, None),
}


def test_the_contract_declares_the_clinical_applicability_table() -> None:
    declared = {f.name: (f.complaints, f.profiles) for f in FEATURES
                if f.restricted and f.role != "red_flag"}
    assert declared == APPLICABILITY


def _value(name: str) -> Any:
    f = BY_NAME[name]
    if f.kind == "boolean":
        return True
    if f.kind == "category":
        return f.allowed[-1]
    assert f.minimum is not None and f.maximum is not None
    return round((f.minimum + f.maximum) / 2, 1) if f.kind == "number" else int(
        (f.minimum + f.maximum) // 2)


CASES = [(name, complaint, profile) for name in APPLICABILITY for complaint in COMPLAINTS
         for profile in (*PROFILES, None)]


@pytest.mark.parametrize(("name", "complaint", "profile"), CASES)
def test_each_applicability_rule_holds_in_serving_and_training(
        name: str, complaint: str, profile: str | None) -> None:
    complaints, profiles = APPLICABILITY[name]
    applies = complaint in complaints and (profiles is None or profile in profiles)
    record = {**BASE, "complaints": [complaint], name: _value(name),
              **({"activity_profile": profile} if profile else {})}
    _, served = rows_from_record(validate_record(record))
    frame = pd.DataFrame([{**{k: v for k, v in record.items() if k != "complaints"},
                           "complaint": complaint}])
    trained = rows_from_frame(frame)
    for X in (served, trained):
        assert np.isnan(X[0, COL[name]]) == (not applies), (name, complaint, profile)
    warned = [w["feature"] for w in not_applicable(record)]
    assert (name in warned) == (not applies)
    clean = {k: v for k, v in record.items() if k != name}
    listed = [m["feature"] for m in missing_items(clean, complaint)]
    assert (name in listed) == applies  # never asked for where it does not apply


def test_a_knee_effusion_is_used_for_the_knee_and_set_aside_for_the_back() -> None:
    record = {**BASE, "complaints": ["pfp", "lbp"], "knee_effusion": True}
    _, X = rows_from_record(record)
    assert X[0, COL["knee_effusion"]] == 1.0 and np.isnan(X[1, COL["knee_effusion"]])
    [warning] = not_applicable(record)
    assert warning["message"].endswith("set it aside for low back pain (it learned this finding "
                                       "only where it applies).")


def test_a_knee_effusion_does_not_move_a_low_back_estimate(tiny_model: cds.Model) -> None:
    record = {**BASE, "complaints": ["lbp"], "pain_nrs": 5}
    without = cds.assess(record, model=tiny_model).results[0].probability
    with_it = cds.assess({**record, "knee_effusion": True}, model=tiny_model).results[0].probability
    assert with_it == without


def test_next_best_tests_are_per_complaint() -> None:
    record = {**BASE, "complaints": ["itbs", "lbp"], "activity_profile": "runner"}
    itbs = candidate_procedures(missing_items(record, "itbs"))
    lbp = candidate_procedures(missing_items(record, "lbp"))
    assert any("Ober" in p for p in itbs) and not any("Ober" in p for p in lbp)
    assert "Straight-leg raise" in lbp and "Straight-leg raise" not in itbs


def test_missing_items_of_a_record_cover_each_of_its_complaints() -> None:
    record = {**BASE, "complaints": ["itbs", "lbp"]}
    names = {m["feature"] for m in missing_items(record)}
    assert {"ober_test_positive", "straight_leg_raise_positive"} <= names
    assert "knee_extension_nm_per_kg" not in names  # PFP only


# ------------------------------------------------------------------ monotone directions
# model column -> (direction, the literature the direction follows)
MONOTONE: dict[str, tuple[int, str]] = {
    "hip_abduction_pct_of_norm": (-1, "Fredericson 2000"),
    "hip_abduction_asymmetry_pct": (1, "Fredericson 2000"),
    "hip_external_rotation_nm_per_kg": (-1, "Prins 2009"),
    "hip_extension_nm_per_kg": (-1, "de Sousa 2019"),
    "knee_extension_nm_per_kg": (1, "Neal 2019"),          # competing driver: strong quads
    "symptom_duration_months": (-1, "Collins 2013"),         # poorer prognosis, not a driver
    "training_load_change_recent": (-1, "Nielsen 2014"),     # a load explanation
    "pain_worse_single_leg_loading": (1, "Neumann 2010"),
    "pain_worse_late_in_activity": (1, "Noehren 2007"),
    "prior_local_care_no_improvement": (1, "Nascimento 2018"),
    "knee_locking_or_giving_way": (-1, "intra-articular"),
    "knee_effusion": (-1, "intra-articular"),
    "leg_pain_below_knee_with_numbness": (-1, "NICE NG59"),
    "straight_leg_raise_positive": (-1, "NICE NG59"),
    "fadir_positive": (-1, "Reiman 2015"),                   # hip joint: competing
    "trendelenburg_sign": (1, "Bird 2001"),
    "lateral_hip_pain": (0, "Grimaldi 2017"),                # gluteal tendinopathy: co-existing
    "trochanter_tenderness": (0, "Grimaldi 2017"),
    "single_leg_stance_30s_pain": (0, "Lequesne 2008"),
    "pain_resisted_hip_abduction": (0, "Grimaldi 2017"),
    "ober_test_positive": (0, "Fredericson & Wolf 2005"),
    "noble_compression_positive": (0, "Noble 1980"),
    "foot_posture_index": (0, "Neal 2014"),
    "single_leg_squat_knee_fppa_deg": (1, "Herrington 2014"),
    "single_leg_squat_pelvic_drop_deg": (1, "Nakagawa 2012"),
    "single_leg_squat_trunk_lean_deg": (1, "Nakagawa 2012"),
    "single_leg_squat_hip_adduction_deg": (1, "Willson & Davis 2008"),
    "step_down_quality": (1, "Crossley 2011"),
    "running_pelvic_drop_deg": (1, "Bramah 2018"),
}


@pytest.mark.parametrize("column", sorted(MONOTONE))
def test_each_monotone_direction_follows_the_literature(column: str) -> None:
    direction, source = MONOTONE[column]
    f = column_feature(column)
    assert column in MODEL_COLUMNS
    assert f.monotone == direction, f"{column}: {source}"
    assert source in f.evidence, f"{column}: the contract cites {f.evidence!r}"


def test_every_clinical_finding_in_the_model_has_a_cited_direction() -> None:
    demographics = {"complaint", "age_years", "sex", "bmi_kg_m2", "activity_profile", "side",
                    "pain_nrs"}
    assert set(MODEL_COLUMNS) - demographics == set(MONOTONE)


def test_gluteal_tendinopathy_signs_are_a_co_existing_source_not_driver_evidence() -> None:
    for name in ("lateral_hip_pain", "trochanter_tenderness", "single_leg_stance_30s_pain",
                 "pain_resisted_hip_abduction"):
        f = BY_NAME[name]
        assert f.monotone == 0 and "gluteal tendinopathy" in f.label + f.points_to
        assert "co-existing" in f.points_to


def test_an_ordered_rating_is_read_as_a_number_so_it_can_carry_a_direction() -> None:
    from cds.features import CATEGORICAL_COLUMNS

    assert "step_down_quality" not in CATEGORICAL_COLUMNS
    _, X = rows_from_record({**BASE, "complaints": ["pfp"], "step_down_quality": "poor"})
    assert X[0, COL["step_down_quality"]] == 2.0


def test_longer_symptoms_never_raise_the_served_estimate(tiny_model: cds.Model) -> None:
    record = {**BASE, "complaints": ["pfp"], "pain_nrs": 5, "pain_worse_single_leg_loading": True}
    probs = [cds.assess({**record, "symptom_duration_months": m}, model=tiny_model)
             .results[0].probability for m in (1, 3, 6, 12, 36)]
    assert probs == sorted(probs, reverse=True)


# ------------------------------------------------------------------ strength normalisation
def _pct(record: dict[str, Any]) -> float:
    _, X = rows_from_record(validate_record({**BASE, "complaints": ["pfp"], **record}))
    return float(X[0, COL["hip_abduction_pct_of_norm"]])


def test_newtons_kilogram_force_and_torque_give_the_same_percent_of_norm() -> None:
    lever, mass, newtons = 0.45, 62.0, 180.0
    torque = newtons * lever / mass
    by_torque = _pct({"hip_abduction_left_nm_per_kg": round(torque, 6)})
    by_newtons = _pct({"hip_abduction_left_force_n": newtons, "hip_abduction_lever_arm_m": lever,
                       "body_mass_kg": mass})
    by_kgf = _pct({"hip_abduction_left_force_kgf": newtons / KGF_TO_N,
                   "hip_abduction_lever_arm_m": lever, "body_mass_kg": mass})
    assert by_newtons == pytest.approx(by_torque) and by_kgf == pytest.approx(by_torque)
    assert by_torque == pytest.approx(100 * torque / abduction_norm_nm_per_kg("female", 30))


def test_the_same_torque_is_weak_for_a_young_man_and_normal_for_an_older_woman() -> None:
    young_man = _pct({"sex": "male", "age_years": 25, "hip_abduction_left_nm_per_kg": 1.0})
    older_woman = _pct({"sex": "female", "age_years": 75, "hip_abduction_left_nm_per_kg": 1.0})
    assert young_man < 60 < 90 < older_woman


def test_a_side_lying_reading_is_compared_with_the_side_lying_norm() -> None:
    supine = _pct({"hip_abduction_left_nm_per_kg": 1.3})
    side_lying = _pct({"hip_abduction_left_nm_per_kg": 1.3, "hip_abduction_protocol": "side_lying"})
    assert side_lying == pytest.approx(supine / 1.27)


@pytest.mark.parametrize("record", [
    {"hip_abduction_left_force_n": 180.0},                                  # no lever, no mass
    {"hip_abduction_left_force_n": 180.0, "hip_abduction_lever_arm_m": 0.45},
    {"hip_abduction_left_nm_per_kg": 1.2, "hip_abduction_left_force_kgf": 18.0,
     "hip_abduction_lever_arm_m": 0.45, "body_mass_kg": 60.0},             # two readings
])
def test_an_incomplete_or_double_dynamometer_reading_is_refused_by_name(record: dict[str, Any]) -> None:
    with pytest.raises(InvalidRecord) as info:
        validate_record({**BASE, "complaints": ["pfp"], **record})
    assert {e.rule for e in info.value.errors} <= {"dependentRequired", "oneOf"}


# ------------------------------------------------------------------ adolescents
def test_a_14_year_old_is_accepted_and_scored_with_adolescent_norms(tiny_model: cds.Model) -> None:
    record = {"complaints": ["pfp"], "age_years": 14, "sex": "female", "side": "right",
              "hip_abduction_left_nm_per_kg": 1.3, "hip_abduction_right_nm_per_kg": 1.1}
    result = cds.assess(record, model=tiny_model).results[0]
    assert 0.0 < result.probability < 1.0
    _, X = rows_from_record(record)
    adolescent = 100 * 1.1 / abduction_norm_nm_per_kg("female", 14)
    assert X[0, COL["hip_abduction_pct_of_norm"]] == pytest.approx(adolescent)
    assert adolescent > 100 * 1.1 / abduction_norm_nm_per_kg("female", 25)  # not the adult norm


def test_under_12_is_refused_with_a_reason_a_clinician_can_read() -> None:
    with pytest.raises(InvalidRecord) as info:
        validate_record({"complaints": ["pfp"], "age_years": 11, "sex": "male"})
    [error] = info.value.errors
    assert (error.field, error.rule) == ("age_years", "minimum")
    assert "at least 12 years" in error.message and "12-90" in error.message


# ------------------------------------------------------------------ red flags
@pytest.mark.parametrize("name", [
    "rf_history_of_cancer", "rf_immunosuppression", "rf_iv_drug_use",
    "rf_steroids_or_osteoporosis_minor_trauma", "rf_unable_to_bear_weight",
    "rf_hot_swollen_joint", "rf_fever", "rf_saddle_numbness", "rf_trauma_rapid_swelling"])
def test_the_red_flag_list_is_complete_and_cited(name: str) -> None:
    f = BY_NAME[name]
    assert f.role == "red_flag" and f.name not in MODEL_COLUMNS
    assert any(src in f.evidence for src in ("NICE", "Finucane 2020", "Downie 2013", "Stiell 1996",
                                             "Coakley 2006"))


def test_every_red_flag_cites_its_source_and_never_feeds_the_model() -> None:
    for f in RED_FLAGS:
        assert f.evidence and f.name not in MODEL_COLUMNS
