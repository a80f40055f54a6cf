"""Pins: each condition of the promotion gate in both directions (a candidate just inside a
margin passes, just outside fails), and the calibration fits recover known intercepts and slopes.

Boundaries are probed 0.005 (AUROC, intercept, slope) or 0.1 pp (subgroup calibration) either
side of the margin, so a changed margin, a dropped ``abs`` (the sign of the intercept or of a
subgroup gap) or a reversed comparison fails a test by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from training.calibration import calibration_intercept_slope, fit_intercept, fit_platt
from training.gate import Margins, check

M = Margins()


def _figures(auroc: float = 0.80, intercept: float = 0.0, slope: float = 1.0,
             group_auroc: float | None = 0.75, group_gap: float = 0.0, n: int = 500,
             too_small: bool = False) -> dict[str, Any]:
    group: dict[str, Any] = {"n": n, "auroc": group_auroc, "observed_minus_expected_pp": group_gap}
    if too_small:
        group["too_small"] = True
    return {"overall": {"auroc": auroc}, "calibration": {"intercept": intercept, "slope": slope},
            "subgroups": {"sex": {"female": group}}}


def _failures(candidate: dict[str, Any], production: dict[str, Any]) -> list[str]:
    verdict = check(candidate, production, M)
    assert verdict["passed"] == (verdict["failures"] == [])
    failures: list[str] = verdict["failures"]
    return failures


def test_the_default_margins_are_the_documented_ones() -> None:
    assert (M.auroc, M.calibration_intercept, M.calibration_slope, M.subgroup_auroc,
            M.subgroup_calibration_pp, M.min_subgroup_n) == (0.02, 0.10, 0.15, 0.05, 5.0, 100)


def test_a_candidate_identical_to_production_passes() -> None:
    assert _failures(_figures(), _figures()) == []


def test_the_verdict_records_the_margins_it_used() -> None:
    assert check(_figures(), _figures(), Margins(auroc=0.5))["margins"]["auroc"] == 0.5


# ------------------------------------------------------------------ overall AUROC

@pytest.mark.parametrize(("auroc", "passes"), [(0.785, True), (0.775, False), (0.95, True)])
def test_overall_auroc_within_its_margin_passes_beyond_fails(auroc: float, passes: bool) -> None:
    failures = _failures(_figures(auroc=auroc), _figures(auroc=0.80))
    assert (failures == []) is passes
    assert passes or any(f.startswith("AUROC ") for f in failures)


# ------------------------------------------------------------------ calibration intercept

@pytest.mark.parametrize(("candidate", "production", "passes"), [
    (+0.145, +0.05, True), (+0.155, +0.05, False),
    (-0.145, +0.05, True), (-0.155, +0.05, False),  # a negative intercept is as bad as a positive
    (+0.145, -0.05, True), (+0.155, -0.05, False),  # production's sign does not matter either
    (-0.145, -0.05, True), (-0.155, -0.05, False),
    (0.0, -0.30, True),
])
def test_calibration_intercept_is_compared_by_size_whatever_its_sign(
        candidate: float, production: float, passes: bool) -> None:
    failures = _failures(_figures(intercept=candidate), _figures(intercept=production))
    assert (failures == []) is passes
    assert passes or any("calibration intercept" in f for f in failures)


# ------------------------------------------------------------------ calibration slope

@pytest.mark.parametrize(("candidate", "production", "passes"), [
    (1.195, 0.95, True), (1.205, 0.95, False),  # too steep
    (0.805, 0.95, True), (0.795, 0.95, False),  # too flat
    (1.195, 1.05, True), (1.205, 1.05, False),
    (0.805, 1.05, True), (0.795, 1.05, False),
    (1.0, 0.60, True),
])
def test_calibration_slope_is_compared_by_its_distance_from_one(
        candidate: float, production: float, passes: bool) -> None:
    failures = _failures(_figures(slope=candidate), _figures(slope=production))
    assert (failures == []) is passes
    assert passes or any("calibration slope" in f for f in failures)


# ------------------------------------------------------------------ subgroups

@pytest.mark.parametrize(("auroc", "passes"), [(0.705, True), (0.695, False), (0.90, True)])
def test_subgroup_auroc_within_its_margin_passes_beyond_fails(auroc: float, passes: bool) -> None:
    failures = _failures(_figures(group_auroc=auroc), _figures(group_auroc=0.75))
    assert (failures == []) is passes
    assert passes or any(f.startswith("sex=female: AUROC") for f in failures)


@pytest.mark.parametrize(("gap", "production_gap", "passes"), [
    (5.9, 1.0, True), (6.1, 1.0, False), (-5.9, 1.0, True), (-6.1, 1.0, False),
    (5.9, -1.0, True), (6.1, -1.0, False), (-5.9, -1.0, True), (-6.1, -1.0, False),
])
def test_subgroup_calibration_gap_is_compared_by_size_whatever_its_sign(
        gap: float, production_gap: float, passes: bool) -> None:
    failures = _failures(_figures(group_gap=gap), _figures(group_gap=production_gap))
    assert (failures == []) is passes
    assert passes or any(f.startswith("sex=female: |observed - expected|") for f in failures)


def test_a_subgroup_without_an_auroc_is_judged_on_calibration_only() -> None:
    assert _failures(_figures(group_auroc=None), _figures(group_auroc=0.90)) == []
    assert _failures(_figures(group_auroc=0.50), _figures(group_auroc=None)) == []
    assert _failures(_figures(group_auroc=None, group_gap=9.0), _figures()) != []


@pytest.mark.parametrize(("n", "checked"), [(99, False), (100, True)])
def test_subgroups_below_the_minimum_size_are_not_gated(n: int, checked: bool) -> None:
    bad = _figures(group_auroc=0.50, group_gap=20.0, n=n)
    assert (_failures(bad, _figures()) != []) is checked


@pytest.mark.parametrize("side", ["candidate", "production"])
def test_a_subgroup_too_small_on_either_side_is_not_gated(side: str) -> None:
    candidate = _figures(group_auroc=0.50, group_gap=20.0, too_small=side == "candidate")
    production = _figures(too_small=side == "production")
    assert _failures(candidate, production) == []


def test_every_failed_condition_is_reported() -> None:
    failures = _failures(_figures(auroc=0.70, intercept=0.5, slope=0.5, group_auroc=0.5,
                                  group_gap=20.0), _figures())
    assert len(failures) == 5


# ------------------------------------------------------------------ calibration fits

N = 200_000


def _sigmoid(z: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return result


def _labels(z: np.ndarray, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(len(z)) < _sigmoid(z)).astype(float)


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    return np.random.default_rng(1).normal(0.0, 1.5, N)


@pytest.mark.parametrize(("intercept", "slope"), [(-0.5, 0.6), (0.4, 1.8), (0.0, 1.0)])
def test_platt_scaling_recovers_a_known_intercept_and_slope(
        raw: np.ndarray, intercept: float, slope: float) -> None:
    fitted = fit_platt(raw, _labels(intercept + slope * raw, 2))
    assert fitted["intercept"] == pytest.approx(intercept, abs=0.03)
    assert fitted["slope"] == pytest.approx(slope, abs=0.03)


def test_recalibration_in_the_large_keeps_the_slope_and_finds_the_intercept(raw: np.ndarray) -> None:
    fitted = fit_intercept(raw, _labels(0.7 + 0.5 * raw, 3), slope=0.5)
    assert fitted["slope"] == 0.5
    assert fitted["intercept"] == pytest.approx(0.7, abs=0.03)


@pytest.mark.parametrize(("shift", "spread"), [(0.0, 1.0), (0.4, 1.0), (-0.4, 1.0),
                                               (0.0, 0.5), (0.0, 1.6)])
def test_calibration_intercept_and_slope_of_known_miscalibration(
        raw: np.ndarray, shift: float, spread: float) -> None:
    """Predictions ``p = sigmoid(lp)``, outcomes drawn from ``sigmoid(shift + spread * lp)``: the
    slope is ``spread`` (overconfident below 1); with ``spread`` 1 the intercept is ``shift``
    (positive: more events than predicted)."""
    y = _labels(shift + spread * raw, 4)
    intercept, slope = calibration_intercept_slope(_sigmoid(raw), y)
    assert slope == pytest.approx(spread, abs=0.03)
    if spread == 1.0:
        assert intercept == pytest.approx(shift, abs=0.03)
    else:  # symmetric outcomes: calibration-in-the-large is still about zero
        assert intercept == pytest.approx(0.0, abs=0.03)


def test_calibration_of_extreme_probabilities_stays_finite(raw: np.ndarray) -> None:
    p = np.where(raw > 0, 1.0, 0.0)  # clipped to 1e-9 / 1 - 1e-9 before the logit
    intercept, slope = calibration_intercept_slope(p, (raw > 0).astype(float))
    assert np.isfinite(intercept) and np.isfinite(slope)


def test_calibration_intercept_is_in_the_large_with_the_slope_fixed_at_one() -> None:
    """Not the intercept of a two-parameter fit: the shift ``a`` of the logit that makes the mean
    predicted probability equal the observed event rate (here about +0.3, where a free-slope
    fit's intercept is 0)."""
    from scipy.optimize import brentq

    lp = np.random.default_rng(5).normal(-1.0, 1.5, N)
    y = _labels(0.5 * lp, 6)
    intercept, slope = calibration_intercept_slope(_sigmoid(lp), y)
    expected = brentq(lambda a: float(_sigmoid(a + lp).sum() - y.sum()), -5, 5)
    assert expected > 0.2  # the case tells the two definitions apart
    assert intercept == pytest.approx(expected, abs=1e-6)
    assert slope == pytest.approx(0.5, abs=0.03)


# ------------------------------------------------------------------ exactly at the margin

def test_a_candidate_exactly_at_every_margin_passes() -> None:
    """"At most production's plus a margin": equality passes (binary-exact numbers)."""
    margins = Margins(auroc=0.25, calibration_intercept=0.25, calibration_slope=0.25,
                      subgroup_auroc=0.25, subgroup_calibration_pp=4.0)
    candidate = _figures(auroc=0.5, intercept=-0.5, slope=1.5, group_auroc=0.5, group_gap=-5.0)
    production = _figures(auroc=0.75, intercept=0.25, slope=0.75, group_auroc=0.75, group_gap=1.0)
    assert check(candidate, production, margins)["failures"] == []


def test_a_small_subgroup_does_not_stop_the_others_being_gated() -> None:
    candidate = _figures()
    candidate["subgroups"]["sex"] = {"female": {"n": 20, "too_small": True},
                                     "male": {"n": 500, "auroc": 0.5,
                                              "observed_minus_expected_pp": 0.0}}
    production = _figures()
    production["subgroups"]["sex"]["male"] = {"n": 500, "auroc": 0.75,
                                              "observed_minus_expected_pp": 0.0}
    assert any(f.startswith("sex=male: AUROC") for f in _failures(candidate, production))


@pytest.mark.parametrize("missing", ["group", "dimension"])
def test_a_subgroup_production_has_no_figures_for_is_not_compared(missing: str) -> None:
    """Nothing to compare with: skipped, not a crash (it was a KeyError)."""
    candidate = _figures(group_auroc=0.5, group_gap=20.0)
    production = _figures()
    if missing == "group":
        production["subgroups"]["sex"] = {}
    else:
        production["subgroups"] = {}
    assert _failures(candidate, production) == []
