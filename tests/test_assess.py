"""cds.assess: the Assessment contract, exact explanations, safety and next steps."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

import cds
from cds.errors import InvalidRecord
from cds.explain import MIN_EXPECTED_CHANGE
from cds.features import COMPLAINTS, DYNAMOMETRY, record_fields
from cds.norms import abduction_norm_nm_per_kg
from training.simulate import simulate

from .conftest import load_example


def _records_from_simulation(n: int, seed: int) -> list[dict[str, Any]]:
    """Simulated patients as API records (one complaint each, nulls dropped)."""
    frame = simulate(n, seed)
    fields = [f.name for f in record_fields() if f.name != "complaints"]
    records = []
    for row in frame.to_dict(orient="records"):
        record: dict[str, Any] = {"complaints": [row["complaint"]]}
        for name in fields:
            value = row.get(name)
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            f = cds.features.BY_NAME[name]
            record[name] = (bool(value) if f.kind == "boolean" else
                            int(value) if f.kind == "integer" else value)
        records.append(record)
    return records


def test_contributions_add_up_to_the_raw_score_on_many_records(tiny_model: cds.Model) -> None:
    for record in _records_from_simulation(300, 99):
        for r in cds.assess(record, model=tiny_model).results:
            absent = r.not_recorded.contribution if r.not_recorded else 0.0
            total = r.starting_point + sum(f.contribution for f in r.factors) + absent
            assert total == pytest.approx(r.raw_score, abs=1e-6)
            assert r.probability == pytest.approx(float(tiny_model.probability(r.raw_score)),
                                                  abs=1e-4)


def test_result_has_the_public_assessment_shape(tiny_model: cds.Model, runner_pfp) -> None:  # type: ignore[no-untyped-def]
    out = cds.assess(runner_pfp, model=tiny_model).to_dict()
    assert set(out) == {"model", "action", "red_flags", "warnings", "results", "referral",
                        "disclaimer"}
    assert out["referral"] is None
    assert set(out["model"]) == {"id", "version", "trained_on"}
    assert "simulated" in out["model"]["trained_on"] and "SIMULATED" in out["disclaimer"]
    (result,) = out["results"]
    assert result["complaint"] == "pfp" and 0 < result["probability"] < 1
    assert result["band"] in ("low", "moderate", "high")
    factor = result["factors"][0]
    assert set(factor) == {"feature", "label", "value", "unit", "reference", "contribution",
                           "direction", "text", "probability_change", "points"}
    magnitudes = [abs(f["contribution"]) for f in result["factors"]]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_factor_text_gives_value_unit_and_reference(tiny_model: cds.Model, runner_pfp) -> None:  # type: ignore[no-untyped-def]
    (result,) = cds.assess(runner_pfp, model=tiny_model).results
    strength = next(f for f in result.factors if f.feature == "hip_abduction_pct_of_norm")
    pct = round(100 * 1.08 / abduction_norm_nm_per_kg("female", 29), 2)  # painful (right) side
    assert strength.value == pct and strength.unit == "% of norm"
    assert f"{pct}% of norm" in strength.text and "75-133% of norm" in strength.text


def test_one_result_per_presenting_complaint(tiny_model: cds.Model) -> None:
    record = load_example("intake_only_pfp_and_lbp")
    results = cds.assess(record, model=tiny_model).results
    assert [r.complaint for r in results] == ["pfp", "lbp"]
    record["complaints"] = list(COMPLAINTS)
    assert len(cds.assess(record, model=tiny_model).results) == 3


def test_red_flag_refers_whatever_the_probability(tiny_model: cds.Model, runner_pfp) -> None:  # type: ignore[no-untyped-def]
    assert cds.assess(runner_pfp, model=tiny_model).action == "assess"
    flagged = {**runner_pfp, "rf_night_pain": True}
    out = cds.assess(flagged, model=tiny_model)
    assert out.action == "refer"
    assert [f["feature"] for f in out.red_flags] == ["rf_night_pain"]
    red_flag_example = cds.assess(load_example("red_flag_trauma_swelling"), model=tiny_model)
    assert red_flag_example.action == "refer"


def test_values_outside_the_training_population_are_flagged(tiny_model: cds.Model, runner_pfp) -> None:  # type: ignore[no-untyped-def]
    assert cds.assess(runner_pfp, model=tiny_model).warnings == []
    extreme = {**runner_pfp, "single_leg_squat_knee_fppa_deg": 44.0}
    warnings = cds.assess(extreme, model=tiny_model).warnings
    assert [w["feature"] for w in warnings] == ["single_leg_squat_knee_fppa_deg"]
    assert "outside the population" in warnings[0]["message"]


def test_missing_items_are_listed_by_group(tiny_model: cds.Model) -> None:
    (result, _) = cds.assess(load_example("intake_only_pfp_and_lbp"), model=tiny_model).results
    missing = {m["feature"]: m["group"] for m in result.missing}
    assert missing["hip_abduction_left_nm_per_kg"] == "exam"
    assert missing["single_leg_squat_knee_fppa_deg"] == "movement"
    assert "running_pelvic_drop_deg" not in missing  # not a runner
    assert "hip_abduction_pct_of_norm" not in missing  # derived, not recordable
    assert "hip_abduction_left_force_n" not in missing  # an alternative reading, not a finding


def test_missing_strength_suggests_dynamometry(tiny_model: cds.Model, runner_pfp) -> None:  # type: ignore[no-untyped-def]
    record = {k: v for k, v in runner_pfp.items()
              if not k.startswith("hip_abduction") and k != "trendelenburg_sign"}
    (result,) = cds.assess(record, model=tiny_model).results
    nxt = result.next_best_assessment
    assert nxt is not None and nxt.procedure == DYNAMOMETRY
    assert nxt.expected_change >= MIN_EXPECTED_CHANGE
    assert "hip_abduction_pct_of_norm" in nxt.features


def test_nothing_is_suggested_when_nothing_is_missing(tiny_model: cds.Model, runner_pfp) -> None:  # type: ignore[no-untyped-def]
    record = {**runner_pfp, "running_pelvic_drop_deg": 6.0, "knee_extension_nm_per_kg": 2.3,
              "hip_external_rotation_nm_per_kg": 0.5, "hip_extension_nm_per_kg": 1.6,
              "pain_resisted_hip_abduction": False, "fadir_positive": False,
              "training_load_change_recent": False, "single_leg_squat_hip_adduction_deg": 9.0,
              "step_down_quality": "moderate"}
    (result,) = cds.assess(record, model=tiny_model).results
    assert result.missing == [] and result.next_best_assessment is None


def test_invalid_input_raises_naming_every_field(tiny_model: cds.Model, runner_pfp) -> None:  # type: ignore[no-untyped-def]
    bad = copy.deepcopy(runner_pfp)
    bad["pain_nrs"] = 14
    bad["side"] = "middle"
    with pytest.raises(InvalidRecord) as info:
        cds.assess(bad, model=tiny_model)
    assert {(e.field, e.rule) for e in info.value.errors} == {("pain_nrs", "maximum"),
                                                                ("side", "enum")}


def test_stronger_painful_side_lowers_the_estimate(tiny_model: cds.Model, runner_pfp) -> None:  # type: ignore[no-untyped-def]
    """Monotone constraints from the contract hold in the served model."""
    probs = []
    for torque in (0.8, 1.1, 1.4, 1.7, 2.0):
        record = {**runner_pfp, "hip_abduction_right_nm_per_kg": torque}
        probs.append(cds.assess(record, model=tiny_model).results[0].probability)
    assert probs == sorted(probs, reverse=True)


@pytest.mark.parametrize("name", ["runner_pfp_hip_driven", "intake_only_pfp_and_lbp",
                                  "red_flag_trauma_swelling"])
def test_to_dict_is_exactly_the_dataclass_contents(tiny_model: cds.Model, name: str) -> None:
    import dataclasses

    out = cds.assess(load_example(name), model=tiny_model)
    assert out.to_dict() == dataclasses.asdict(out)
