"""Clinical safety that beats the score: red flags and out-of-population values.

A red flag routes the patient to referral whatever the probability. A value outside the range
the model was trained on is flagged rather than silently extrapolated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .features import MODEL_COLUMNS, RED_FLAGS, column_feature


def red_flags(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The red-flag questions answered yes."""
    return [{"feature": f.name, "label": f.label} for f in RED_FLAGS if record.get(f.name) is True]


def population_warnings(row: np.ndarray, population: Mapping[str, list[float]]) -> list[dict[str, str]]:
    """Warnings for values outside the training population (0.5th-99.5th percentile).

    ``population`` maps model columns to ``[low, high]`` as stored in the model's metadata.
    """
    warnings = []
    for j, col in enumerate(MODEL_COLUMNS):
        bounds = population.get(col)
        value = row[j]
        if bounds is None or np.isnan(value):
            continue
        low, high = bounds
        if value < low or value > high:
            f = column_feature(col)
            unit = f" {f.unit}" if f.unit else ""
            warnings.append({
                "feature": col,
                "code": "out-of-population",
                "message": f"{f.label} lies outside the population the model was trained on "
                           f"({low:.3g}-{high:.3g}{unit}); the estimate is extrapolated and less "
                           "reliable.",
            })
    return warnings
