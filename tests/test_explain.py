"""Explanations a clinician trusts: the complaint's base rate is the starting point, not a
reason; a value not recorded is never a reason (one "not recorded" line); each line also in
percentage points of probability, adding up exactly along the calibrated curve."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import cds
from cds.points import probability_changes, whole_points

from .conftest import load_example


def _lines(r: Any) -> list[Any]:
    return [*r.factors, *([r.not_recorded] if r.not_recorded else [])]


@pytest.mark.parametrize("name", ["runner_pfp_hip_driven", "intake_only_pfp_and_lbp",
                                  "cyclist_itbs", "lbp_radicular"])
def test_the_complaint_is_the_starting_point_not_a_reason(tiny_model: cds.Model,
                                                          name: str) -> None:
    record = load_example(name)
    for r in cds.assess(record, model=tiny_model).results:
        assert all(f.feature != "complaint" for f in r.factors)
        row, contributions = _row_and_contributions(tiny_model, name, r.complaint)
        columns = cds.features.MODEL_COLUMNS
        # the complaint, and the findings that do not apply to it (left unrecorded, as they
        # should be: Ober's test for back pain), make the starting point
        elsewhere = [j for j, c in enumerate(columns) if np.isnan(row[j])
                     and record.get(c) in (None, False)  # a value set aside is said, below
                     and not cds.features.column_feature(c).applies_to(record, r.complaint)]
        assert not set(r.not_recorded.features if r.not_recorded else ()) & {
            columns[j] for j in elsewhere}
        expected = contributions[-1] + contributions[columns.index("complaint")] + sum(
            contributions[j] for j in elsewhere)
        assert r.starting_point == pytest.approx(expected)
        assert r.base_value == pytest.approx(contributions[-1])
        assert r.starting_probability == pytest.approx(
            float(tiny_model.probability(r.starting_point)))


def _row_and_contributions(model: cds.Model, name: str, complaint: str) -> tuple[Any, Any]:
    from cds.intake import rows_from_record
    from cds.validate import validate_record

    complaints, rows = rows_from_record(validate_record(load_example(name)))
    i = complaints.index(complaint)
    return rows[i], model.contributions(rows[i: i + 1])[0]


def test_the_starting_point_differs_by_complaint(tiny_model: cds.Model) -> None:
    record = {**load_example("intake_only_pfp_and_lbp"), "complaints": ["pfp", "itbs", "lbp"]}
    starts = {r.complaint: r.starting_probability
              for r in cds.assess(record, model=tiny_model).results}
    assert len(set(starts.values())) == 3


def test_values_not_recorded_are_never_reasons_but_one_line(tiny_model: cds.Model) -> None:
    for r in cds.assess(load_example("intake_only_pfp_and_lbp"), model=tiny_model).results:
        assert all(f.value is not None for f in r.factors)
        line = r.not_recorded
        assert line is not None
        assert "hip_abduction_pct_of_norm" in line.features
        assert not {f.feature for f in r.factors} & set(line.features)
        assert line.count == len(line.features)
        assert f"Findings not recorded ({line.count} findings)" in line.text


def test_a_finding_set_aside_joins_the_not_recorded_line(tiny_model: cds.Model) -> None:
    record = {**load_example("runner_pfp_hip_driven"), "activity_profile": "general",
              "running_pelvic_drop_deg": 14.0}
    (r,) = cds.assess(record, model=tiny_model).results
    assert r.not_recorded is not None and "running_pelvic_drop_deg" in r.not_recorded.features
    assert "set aside" in r.not_recorded.text
    assert all(f.feature != "running_pelvic_drop_deg" for f in r.factors)


def test_a_complete_record_has_no_not_recorded_line(tiny_model: cds.Model) -> None:
    record = {**load_example("runner_pfp_hip_driven"), "running_pelvic_drop_deg": 6.0,
              "knee_extension_nm_per_kg": 2.3, "hip_external_rotation_nm_per_kg": 0.5,
              "hip_extension_nm_per_kg": 1.6, "pain_resisted_hip_abduction": False,
              "fadir_positive": False, "training_load_change_recent": False,
              "single_leg_squat_hip_adduction_deg": 9.0, "step_down_quality": "moderate"}
    (r,) = cds.assess(record, model=tiny_model).results
    assert r.not_recorded is None


@pytest.mark.parametrize("name", ["runner_pfp_hip_driven", "intake_only_pfp_and_lbp",
                                  "cyclist_itbs", "lbp_radicular"])
def test_percentage_points_add_up_exactly_to_the_change_from_the_starting_point(
        tiny_model: cds.Model, name: str) -> None:
    for r in cds.assess(load_example(name), model=tiny_model).results:
        lines = _lines(r)
        exact = float(tiny_model.probability(r.raw_score))
        assert r.starting_probability + sum(x.probability_change for x in lines) == (
            pytest.approx(exact, abs=1e-12))
        assert all((x.probability_change > 0) == (x.contribution > 0) for x in lines
                   if x.contribution != 0)
        assert sum(x.points for x in lines) == (round(100 * exact)
                                                - round(100 * r.starting_probability))


def test_factor_text_gives_whole_percentage_points(tiny_model: cds.Model) -> None:
    (r,) = cds.assess(load_example("runner_pfp_hip_driven"), model=tiny_model).results
    top = r.factors[0]
    assert isinstance(top.points, int) and top.points != 0
    assert top.text.endswith(f"by {abs(top.points)} percentage points")


def test_sequential_changes_telescope_and_follow_the_curve() -> None:
    def curve(z: float) -> float:
        return 1 / (1 + 2.718281828459045 ** -z)

    changes = probability_changes(-1.0, [0.5, -0.2, 1.0], curve)
    assert sum(changes) == pytest.approx(curve(0.3) - curve(-1.0), abs=1e-15)
    assert changes[0] == pytest.approx(curve(-0.5) - curve(-1.0))
    assert changes[2] == pytest.approx(curve(0.3) - curve(-0.7))


@pytest.mark.parametrize(("start", "changes"), [
    (0.2849, [0.0051, 0.0051, 0.0051, -0.0003]),
    (0.10, [0.333, 0.333, 0.333]),
    (0.5, [0.004, -0.004, 0.0049]),
    (0.3, []),
])
def test_whole_points_add_up_to_the_shown_change(start: float, changes: list[float]) -> None:
    points = whole_points(start, changes)
    assert sum(points) == round(100 * (start + sum(changes))) - round(100 * start)
    assert all(abs(p - 100 * c) < 1 for p, c in zip(points, changes, strict=True))


def test_cards_start_at_the_complaint_and_give_whole_points(tiny_model: cds.Model) -> None:
    from service.ehr.cards import build_cards

    assessment = cds.assess(load_example("intake_only_pfp_and_lbp"), model=tiny_model)
    result = assessment.to_dict()
    cards, _ = build_cards(assessment, "a1", "https://cds.example.org")
    for card, r in zip(cards, result["results"], strict=True):
        start = round(100 * r["starting_probability"])
        assert f"from {start}%, the starting point for {r['complaint_label'].lower()}" in (
            card["detail"])
        assert r["factors"][0]["text"] in card["detail"] and "percentage point" in card["detail"]
        assert r["not_recorded"]["text"] in card["detail"]


def test_the_page_starts_at_the_complaint_and_keeps_not_recorded_out_of_the_reasons(
        client: Any, app: Any) -> None:
    from tests.test_ui import assessed

    _, html = assessed(client, app, "intake_only_pfp_and_lbp")
    assert "the starting point for patellofemoral (anterior knee) pain" in html
    why = html[html.index('<ol class="why">'):]
    why = why[: why.index("</ol>")]
    assert "not recorded" not in why.lower()
    assert '<p class="not-recorded">Findings not recorded (' in html


def test_points_wording_is_the_same_inside_and_outside_the_precomputed_range() -> None:
    from cds.explain import points_text

    assert points_text(0) == "by less than 1 percentage point"
    assert points_text(1) == points_text(-1) == "by 1 percentage point"
    assert points_text(-7) == "by 7 percentage points"
    assert points_text(100) == "by 100 percentage points"
    assert points_text(101) == "by 101 percentage points"  # past the table: worded on the fly
