"""Strength norms by sex and age (cds.norms): the numbers of the priors, interpolated."""

from __future__ import annotations

import doctest

import pytest

from cds import norms


def test_doctests_hold() -> None:
    assert doctest.testmod(norms).failed == 0


@pytest.mark.parametrize(("sex", "low", "high"), [("female", 1.3, 1.8), ("male", 1.6, 2.2)])
def test_young_adult_norms_lie_in_the_published_ranges(sex: str, low: float, high: float) -> None:
    # CLINICAL.md priors (de Sousa 2019 control arms; Allison 2016): young adults F 1.3-1.8,
    # M 1.6-2.2 N·m/kg
    for age in (20, 25, 30, 35):
        assert low <= norms.abduction_norm_nm_per_kg(sex, age) <= high


@pytest.mark.parametrize("sex", ["female", "male"])
def test_older_adults_lie_in_the_published_range_and_decline_after_40(sex: str) -> None:
    # 50-70 y 0.9-1.3 N·m/kg (CLINICAL.md priors); men sit at or just above its upper edge
    for age in (60, 65, 70):
        assert 0.9 <= norms.abduction_norm_nm_per_kg(sex, age) <= 1.5
    at40, at70 = (norms.abduction_norm_nm_per_kg(sex, a) for a in (40, 70))
    yearly = 1 - (at70 / at40) ** (1 / 30)
    assert 0.005 <= yearly <= 0.012  # ~0.5-1 %/y after 40


def test_men_are_stronger_than_women_in_young_adulthood_and_less_so_after_40() -> None:
    gap = {a: norms.abduction_norm_nm_per_kg("male", a) / norms.abduction_norm_nm_per_kg("female", a)
           for a in (25, 45)}
    assert gap[25] > gap[45] > 1.0  # Leporace 2023


def test_adolescents_have_their_own_lower_norms() -> None:
    for sex in ("female", "male"):
        assert (norms.abduction_norm_nm_per_kg(sex, 12) < norms.abduction_norm_nm_per_kg(sex, 15)
                < norms.abduction_norm_nm_per_kg(sex, 18))


def test_percent_of_norm_reads_a_25_year_old_man_at_1_0_as_weak() -> None:
    assert norms.pct_of_norm(1.0, "male", 25) == pytest.approx(54.5, abs=0.5)
    assert norms.pct_of_norm(1.0, "female", 75) == pytest.approx(94, abs=2)


def test_side_lying_norms_are_higher_than_supine() -> None:
    supine = norms.abduction_norm_nm_per_kg("female", 30)
    assert norms.abduction_norm_nm_per_kg("female", 30, "side_lying") == pytest.approx(1.27 * supine)


def test_reference_range_is_the_10th_to_90th_percentile_around_the_median() -> None:
    lo, hi = norms.reference_range("hip_abduction", "male", 25)
    median = norms.abduction_norm_nm_per_kg("male", 25)
    assert lo < median < hi and lo * hi == pytest.approx(median ** 2)
    assert "25 y" in norms.reference_text("hip_abduction")


def test_ages_outside_the_table_take_the_nearest_anchor() -> None:
    assert norms.abduction_norm_nm_per_kg("male", 95) == norms.abduction_norm_nm_per_kg("male", 90)
