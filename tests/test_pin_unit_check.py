"""Pins: the training data's unit check (:func:`training.schema.unit_plausible`), rule by rule.

Body mass index (contract limits 14-60 kg/m², reference 19-29, so ``w`` = 10): a column whose
values all lie within the limits, with an ordinary spread, is still another unit when its median
is beyond ``hi + 2w`` = 49. The lower bound (``lo - 2w`` = -1) lies below the contract's minimum,
so it is probed on a copy of the feature with a wider minimum.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cds.features import BY_NAME
from training.schema import UNIT_MIN_VALUES, UNIT_OUTSIDE_SHARE, unit_plausible

BMI = BY_NAME["bmi_kg_m2"]
WIDE = dataclasses.replace(BMI, minimum=-100.0)


def _column(median: float, half_iqr: float = 2.0, n: int = 201) -> pd.Series:
    """``n`` evenly spaced values with this median and (about) this interquartile range."""
    return pd.Series(np.linspace(median - 2 * half_iqr, median + 2 * half_iqr, n))


def test_the_rule_constants() -> None:
    assert (UNIT_MIN_VALUES, UNIT_OUTSIDE_SHARE) == (50, 0.5)
    assert (BMI.minimum, BMI.maximum, BMI.reference) == (14, 60, "19-29")


@pytest.mark.parametrize(("median", "plausible"), [(24.0, True), (48.5, True), (49.5, False),
                                                   (55.0, False)])
def test_a_median_beyond_the_reference_range_plus_twice_its_width_is_another_unit(
        median: float, plausible: bool) -> None:
    column = _column(median)
    assert column.between(BMI.minimum, BMI.maximum).all()  # only the median rule can refuse it
    assert unit_plausible(BMI, column) is plausible


@pytest.mark.parametrize(("median", "plausible"), [(-0.5, True), (-1.5, False), (-20.0, False)])
def test_a_median_below_the_reference_range_minus_twice_its_width_is_another_unit(
        median: float, plausible: bool) -> None:
    assert unit_plausible(WIDE, _column(median)) is plausible


@pytest.mark.parametrize(("half_iqr", "plausible"), [(0.2, False), (0.3, True), (0.0, True)])
def test_an_interquartile_range_below_a_twentieth_of_the_width_is_another_unit(
        half_iqr: float, plausible: bool) -> None:
    """IQR 0.4 < w/20 = 0.5 fails, 0.6 passes; a constant column (IQR 0) is not judged on it."""
    assert unit_plausible(BMI, _column(25.0, half_iqr)) is plausible


@pytest.mark.parametrize(("half_iqr", "plausible"), [(99.0, True), (101.0, False)])
def test_an_interquartile_range_above_twenty_widths_is_another_unit(
        half_iqr: float, plausible: bool) -> None:
    feature = dataclasses.replace(BMI, minimum=-1000.0, maximum=1000.0)
    assert unit_plausible(feature, _column(24.0, half_iqr)) is plausible


@pytest.mark.parametrize("other", [5.0, 70.0])  # below the minimum, above the maximum
def test_most_values_outside_the_contract_limits_is_another_unit(other: float) -> None:
    """Judged without a reference range, so only the share outside the limits decides."""
    feature = dataclasses.replace(BMI, reference=None)
    assert unit_plausible(feature, pd.Series(np.r_[np.full(49, 25.0), np.full(51, other)])) is False
    assert unit_plausible(feature, pd.Series(np.r_[np.full(50, 25.0), np.full(50, other)])) is True


def test_too_few_values_are_not_judged() -> None:
    assert unit_plausible(BMI, _column(55.0, n=UNIT_MIN_VALUES - 1)) is True
    assert unit_plausible(BMI, _column(55.0, n=UNIT_MIN_VALUES)) is False


def test_values_that_are_not_numbers_do_not_count() -> None:
    column = pd.concat([_column(55.0, n=UNIT_MIN_VALUES - 1), pd.Series(["x"] * 100)])
    assert unit_plausible(BMI, column) is True
