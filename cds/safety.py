"""Clinical safety that beats the score: red flags, out-of-population values, findings that do
not apply.

A red flag routes the patient to referral and no score is given at all; a red-flag question
left unanswered is named in a warning (the score is given). A value outside the values the
model was trained on is flagged rather than silently extrapolated. A finding recorded for a
complaint or patient it does not apply to (a knee effusion for low back pain, running analysis
for a cyclist) is set aside by the model matrix (:mod:`cds.intake`), and the clinician is told.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .contract import PROFILE_FIELD
from .features import BY_NAME, MODEL_COLUMNS, RED_FLAGS, ROWS, column_feature

_RESTRICTED = [f for f in BY_NAME.values() if f.restricted and f.role in ("model", "input")]
_COMPLAINT_WORDS = dict(zip(ROWS.allowed, ROWS.allowed_labels, strict=True))
OUT_OF_POPULATION, NOT_APPLICABLE = "out-of-population", "not-applicable"
SCREEN_INCOMPLETE = "red-flag-screen-incomplete"
WARNING_CODES = (OUT_OF_POPULATION, NOT_APPLICABLE, SCREEN_INCOMPLETE)
WARNING_TITLES = {OUT_OF_POPULATION: "Outside the training population.",
                  NOT_APPLICABLE: "Set aside.", SCREEN_INCOMPLETE: "Red-flag screen incomplete."}
"""How a front end titles each warning code (the message says the rest)."""


def red_flags(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """The red-flag questions answered yes."""
    return [{"feature": name, "label": label} for name, label in _FLAGS
            if name in record and record[name] is True]


_FLAGS = tuple((f.name, f.label) for f in RED_FLAGS)


def referral(flags: list[dict[str, str]]) -> str:
    """What a refer result says instead of any estimate."""
    return ("Refer / rule out serious pathology first: " + "; ".join(f["label"] for f in flags)
            + ". No hip-driver estimate is given while a red flag is present; assess again once "
            "it has been ruled out.")


def screen_incomplete(record: Mapping[str, Any], *, refer: bool = False) -> list[dict[str, str]]:
    """One warning naming the red-flag questions not asked (that apply to this patient).

    The score is still given: an unanswered question is not a yes, but the clinician must ask
    it before acting on the estimate (with ``refer``, there is no estimate: ask them for the
    referral). ``feature`` lists the questions' names, comma-separated.
    """
    unasked = [f for f in RED_FLAGS
               if (f.name not in record or record[f.name] is None) and f.applies_to(record)]
    if not unasked:
        return []
    then = (" Ask them too, for the referral." if refer else
            " Ask before acting on the estimate: a yes to any means refer, not score.")
    return [{"feature": ",".join(f.name for f in unasked), "code": SCREEN_INCOMPLETE,
             "message": "Red-flag screen incomplete: " + "; ".join(f.label for f in unasked)
                        + f" {'was' if len(unasked) == 1 else 'were'} not asked." + then}]


def not_applicable(record: Mapping[str, Any]) -> list[dict[str, str]]:
    """Warnings for recorded findings set aside for some or all of the record's complaints.

    A finding applies to the complaints and activity profiles its contract row declares
    (``complaints``, ``profiles``); where it does not, the model matrix sets it aside. A "no"
    (straight-leg raise negative, recorded for a knee complaint) is set aside silently.
    """
    complaints = record.get(ROWS.name) or ()
    profile = record.get(PROFILE_FIELD)
    if (isinstance(complaints, list | tuple) and (profile is None or type(profile) is str)
            and all(type(c) is str and c in _COMPLAINT_WORDS for c in complaints)):
        key = (profile, tuple(complaints))
        said = _SAID.get(key)
        if said is None:
            said = _set_aside_messages(record, complaints)
            if len(_SAID) < 256:  # profiles x sets of complaints; a stray one is not kept
                _SAID[key] = said
    else:  # not a validated record: only what is recorded is worded
        said = _set_aside_messages(record, complaints, recorded_only=True)
    return [{"feature": name, "code": NOT_APPLICABLE, "message": message}
            for name, message in said if _said(record.get(name))]


def _said(value: Any) -> bool:
    """Recorded, and not a "no" (a "no" set aside says nothing worth a warning)."""
    return value is not None and value is not False


_SAID: dict[tuple[str | None, tuple[str, ...]], list[tuple[str, str]]] = {}


def _set_aside_messages(record: Mapping[str, Any], complaints: Any, *,
                        recorded_only: bool = False) -> list[tuple[str, str]]:
    """(finding, what its warning says) of each restricted finding (``recorded_only``: of
    those recorded) that does not apply to some of ``complaints`` for the patient of
    ``record``: it depends on the activity profile and the complaints only, so it is worked
    out once per pair."""
    out = []
    for f in _RESTRICTED:
        if recorded_only and not _said(record.get(f.name)):
            continue
        aside = [c for c in complaints if not f.applies_to(record, c)]
        if not aside:
            continue
        which = ("every complaint" if len(aside) == len(complaints)
                 else ", ".join(_COMPLAINT_WORDS[c].lower() for c in aside))
        out.append((f.name, f"{f.label} was recorded, but it applies to {f.condition}; the "
                            f"model set it aside for {which} (it learned this finding only "
                            "where it applies)."))
    return out


POPULATION_METHODS = {"min-max": "smallest to largest value in training",
                      None: "0.5th-99.5th percentile of training"}
"""How a model's ``metadata["population"]`` was measured (``population_method``): the training
support, or (models written before it, 0.1.0) the central 99% of training values."""


def population_warnings(row: np.ndarray, population: Mapping[str, list[float]],
                        method: str | None = None) -> list[dict[str, str]]:
    """Warnings for values outside the population the model was trained on.

    ``population`` maps model columns to ``[low, high]`` as stored in the model's metadata,
    measured by ``method`` (:data:`POPULATION_METHODS`; the metadata's ``population_method``).
    """
    how = POPULATION_METHODS.get(method, POPULATION_METHODS[None])
    warnings = []
    values = row.tolist()
    for j, low, high in _ranges(population):
        if values[j] < low or values[j] > high:  # NaN (not recorded) is never outside
            f = column_feature(MODEL_COLUMNS[j])
            unit = f" {f.unit}" if f.unit else ""
            warnings.append({
                "feature": MODEL_COLUMNS[j],
                "code": OUT_OF_POPULATION,
                "message": f"{f.label} lies outside the population the model was trained on "
                           f"({low:.3g}-{high:.3g}{unit}, {how}); the estimate is "
                           "extrapolated and less reliable.",
            })
    return warnings


_BOUNDS: dict[int, tuple[Mapping[str, list[float]], np.ndarray, np.ndarray]] = {}


def _bounds(population: Mapping[str, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """The ranges as two arrays over the model columns (unbounded where none), once per model."""
    hit = _BOUNDS.get(id(population))
    if hit is None or hit[0] is not population:
        low = np.array([population.get(c, (-np.inf, np.inf))[0] for c in MODEL_COLUMNS])
        high = np.array([population.get(c, (-np.inf, np.inf))[1] for c in MODEL_COLUMNS])
        if len(_BOUNDS) > 8:  # models come and go with hot reloads; keep a few
            _BOUNDS.clear()
        hit = _BOUNDS[id(population)] = (population, low, high)
    return hit[1], hit[2]


_RANGES: dict[int, tuple[np.ndarray, list[tuple[int, float, float]]]] = {}


def _ranges(population: Mapping[str, list[float]]) -> list[tuple[int, float, float]]:
    """(model column, low, high) of each column with a range (:func:`_bounds` as plain floats),
    once per model: floats compared one by one cost less than numpy's comparisons of two small
    arrays for one row."""
    low, high = _bounds(population)
    hit = _RANGES.get(id(low))
    if hit is None or hit[0] is not low:
        ranges = [(j, lo, hi) for j, (lo, hi) in enumerate(zip(low.tolist(), high.tolist(),
                                                                strict=True))
                  if lo != -math.inf or hi != math.inf]
        if len(_RANGES) > 8:
            _RANGES.clear()
        hit = _RANGES[id(low)] = (low, ranges)
    return hit[1]
