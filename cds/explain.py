"""Contributions -> ranked factors in words; missing items; the next best assessment.

Factors are the exact TreeSHAP contributions on the raw score (log-odds), one per recorded
finding with a non-zero contribution, with the value, unit and reference range a clinician
reads, and the change of probability it makes (:mod:`cds.points`). The complaint's own
contribution joins the base value as the starting point; findings not recorded share one line. The
next best assessment is the missing exam or movement test whose result would typically move the
calibrated probability the most.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .assessment import Factor, NextAssessment, NotRecorded
from .contract import PROFILE_FIELD
from .features import (
    BY_NAME,
    FEATURES,
    MODEL_COLUMNS,
    ROWS,
    YES_NO,
    Feature,
    column_feature,
)
from .points import probability_changes, whole_points

if TYPE_CHECKING:
    from .model import Model

_COLUMN_INDEX = {c: j for j, c in enumerate(MODEL_COLUMNS)}
MIN_EXPECTED_CHANGE = 0.02
"""A test expected to move the probability by less than this is not worth suggesting."""


def display_value(f: Feature, encoded: float) -> Any:
    """A model value as a clinician reads it: a label, yes/no, or a rounded number."""
    if encoded != encoded:  # NaN, without a numpy call per value
        return None
    if f.kind == "category":
        labels = f.allowed_labels or f.allowed
        return labels[int(encoded)]
    if f.kind == "boolean":
        return "yes" if encoded >= 0.5 else "no"
    if f.kind == "integer":
        return int(encoded)
    return round(float(encoded), 2)


def with_unit(value: Any, unit: str | None) -> str:
    """``18.5°``, ``6/10``, ``1.08 N·m/kg``, ``yes``."""
    if not unit or unit == YES_NO:
        return str(value)
    return f"{value}{unit}" if not unit[0].isalnum() else f"{value} {unit}"


class _Wording:
    """What a factor says about one model column, prepared once (this runs on every request):
    the head and tail of its sentence, and the value shown for each code of a yes/no or
    category column."""

    __slots__ = ("column", "digits", "ending", "feature", "head", "label", "reference", "shown",
                 "unit")

    def __init__(self, column: str) -> None:
        f = column_feature(column)
        self.column = column
        self.feature = f
        self.label = f.label
        self.head = f"{f.label}: "
        self.unit = f.unit if f.unit != YES_NO else None
        self.reference = f.reference
        suffix = with_unit("", f.unit)  # "°", " N·m/kg", or nothing
        reference_text = (f" (pain-free people {with_unit(f.reference, f.unit)})"
                          if f.reference else "")
        self.ending = {verb: f"{suffix}{reference_text} {verb} the estimate "
                       for verb in ("raises", "lowers")}  # then the points
        codes = range(len(f.allowed)) if f.kind == "category" else (0, 1)
        self.shown: dict[float, Any] = (
            {float(code): display_value(f, float(code)) for code in codes}
            if f.kind in ("category", "boolean") else {})
        self.digits = 2 if f.kind not in ("category", "boolean", "integer") else None

    def factor(self, encoded: float, contribution: float, change: float, points: int) -> Factor:
        """The line of a recorded finding, its change of probability and whole points given.
        The value as :func:`display_value` shows it: a number rounded here, a code looked up."""
        value = (round(encoded, 2) if self.digits is not None and encoded == encoded
                 else self.shown.get(encoded))
        if value is None:  # a whole number (or a code outside the contract's: worded as ever)
            value = display_value(self.feature, encoded)
        verb = "raises" if contribution > 0 else "lowers"
        return Factor(self.column, self.label, value, self.unit, self.reference, contribution,
                      verb, f"{self.head}{value}{self.ending[verb]}"
                            f"{_POINTS_TEXT.get(points) or points_text(points)}",
                      change, points)


_WORDING = [_Wording(c) for c in MODEL_COLUMNS]
_COMPLAINT = _COLUMN_INDEX[ROWS.row_column or "complaint"]
_FINDINGS = tuple(j for j in range(len(MODEL_COLUMNS)) if j != _COMPLAINT)


def points_text(points: int) -> str:
    """``by 7 percentage points``; a change shown as 0 points (under 1 point) says so."""
    text = _POINTS_TEXT.get(points)
    if text is not None:
        return text
    if points == 0:
        return "by less than 1 percentage point"
    return f"by {abs(points)} percentage point{'s' if abs(points) != 1 else ''}"


_POINTS_TEXT: dict[int, str] = {}
_POINTS_TEXT.update({p: points_text(p) for p in range(-100, 101)})
"""Every change a line can show (whole points of a probability), worded once."""


class Explanation(NamedTuple):
    """One row's explanation: from the complaint's starting point, the recorded findings (largest
    first), and the findings not recorded together on one line."""

    starting_point: float
    starting_probability: float
    factors: list[Factor]
    not_recorded: NotRecorded | None
    base_value: float = 0.0
    """The model's base value (the contributions' last), from which the starting point starts."""


def explain(row: np.ndarray, contributions: np.ndarray,
            probability: Callable[[float], float],
            set_aside: Collection[str] = (), not_applicable: Collection[str] = ()
            ) -> Explanation:
    """The exact contributions of one row as a clinician reads them.

    * The starting point is the model's base value plus the complaint's own contribution: the
      base rate of this complaint (in log-odds), not a reason. The findings that do not apply to
      this complaint or activity (``not_applicable``: Ober's test for back pain), left
      unrecorded as they should be, belong to that starting point too: they are neither
      reasons nor findings to record.
    * Each recorded finding with a non-zero contribution is a factor, largest magnitude first.
    * The findings not recorded (or ``set_aside``: recorded where they do not apply) are never
      reasons: their contributions are summed on one line.
    * Every line also gets its change of probability (:mod:`cds.points`) and whole points.

    ``starting_point + sum(factor contributions) + not_recorded.contribution`` equals the raw
    score exactly (up to floating point).
    """
    values = contributions.tolist()  # the columns', then the base value
    encoded = row.tolist()
    to_start = {j for c in not_applicable if c not in set_aside
                and (j := _COLUMN_INDEX.get(c)) is not None}
    start = values[-1] + values[_COMPLAINT]
    recorded, absent = [], []
    for j in _FINDINGS:
        value = encoded[j]
        if value != value:  # NaN: not recorded, or set aside
            if j in to_start:
                start += values[j]  # does not apply here, and was not recorded: the starting point
            else:
                absent.append(j)
        elif values[j] != 0.0:
            recorded.append(j)
    size = list(map(abs, values))
    recorded.sort(key=size.__getitem__, reverse=True)  # stable: ties keep the column order
    steps = [values[j] for j in recorded]  # the walk's lines, in the order shown
    if absent:
        total = sum(values[j] for j in absent)
        # placed among the factors by its size, like any other line of the walk
        at = next((i for i, j in enumerate(recorded) if size[j] < abs(total)), len(steps))
        steps.insert(at, total)
    changes = probability_changes(start, steps, probability)
    p0 = probability(start)
    points = whole_points(p0, changes)
    missing = None
    if absent:
        names = [MODEL_COLUMNS[j] for j in absent]
        missing = NotRecorded(len(absent), names, total, "raises" if total > 0 else "lowers", "",
                              changes.pop(at), points.pop(at))
        missing.text = _not_recorded_text(missing, any(n in set_aside for n in names))
    factors = [_WORDING[j].factor(encoded[j], values[j], change, pts)
               for j, change, pts in zip(recorded, changes, points, strict=True)]
    return Explanation(start, p0, factors, missing, values[-1])


def _not_recorded_text(line: NotRecorded, some_set_aside: bool) -> str:
    what = "not recorded or set aside" if some_set_aside else "not recorded"
    findings = f"{line.count} finding{'s' if line.count != 1 else ''}"
    if line.contribution == 0.0:
        return f"Findings {what} ({findings}): no effect on the estimate"
    return (f"Findings {what} ({findings}): together they {line.direction[:-1]} the estimate "
            f"{points_text(line.points)}, as the model treats "
            "missing values")


_CANONICAL = {f.converts_to: [g.name for g in FEATURES if g.converts_to == f.converts_to]
              for f in FEATURES if f.converts_to}
"""Torque fields and the dynamometer readings that stand in for them."""
_MISSABLE = [f for f in FEATURES if f.role == "model" or f.name in _CANONICAL]


def _recorded(record: Mapping[str, Any], f: Feature) -> bool:
    return record.get(f.name) is not None or any(
        record.get(alt) is not None for alt in _CANONICAL.get(f.name, ()))


def missing_items(record: Mapping[str, Any], complaint: str | None = None) -> list[dict[str, str]]:
    """Recordable findings absent from the record that apply to this patient: to ``complaint``
    if given (Ober's test is missing for IT band syndrome, never for low back pain), else to at
    least one of the record's complaints. A torque given as a dynamometer force is recorded."""
    profile = record.get(PROFILE_FIELD)
    if type(complaint) is not str or not (profile is None or type(profile) is str):
        return [{"feature": f.name, "label": f.label, "group": f.group}
                for f in _MISSABLE
                if not _recorded(record, f) and f.applies_to(record, complaint)]
    return [{"feature": name, "label": label, "group": group}
            for name, label, group, alternatives in _missable(profile, complaint)
            if (name not in record or record[name] is None)
            and not (alternatives and any(record.get(a) is not None for a in alternatives))]


_MISSABLE_HERE: dict[tuple[str | None, str], list[tuple[str, str, str, tuple[str, ...]]]] = {}


def _missable(profile: str | None, complaint: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(name, label, group, the readings that stand in for it) of each recordable finding that
    applies to ``complaint`` for a patient of this activity profile, in contract order: what
    :meth:`~cds.contract.Feature.applies_to` answers, worked out once per pair."""
    key = (profile, complaint)
    found = _MISSABLE_HERE.get(key)
    if found is None:
        record = {PROFILE_FIELD: profile}
        found = [(f.name, f.label, f.group, tuple(_CANONICAL.get(f.name, ())))
                 for f in _MISSABLE if f.applies_to(record, complaint)]
        if len(_MISSABLE_HERE) < 64:  # profiles x complaints; a stray one is not kept
            _MISSABLE_HERE[key] = found
    return found


def _procedure_columns() -> dict[str, list[str]]:
    """Each procedure -> the model columns its result fills (derived columns follow their inputs)."""
    out: dict[str, list[str]] = {}
    for col in MODEL_COLUMNS:
        f = column_feature(col)
        sources = [BY_NAME[s] for s in f.derived_from] or [f]
        for s in sources:
            if s.procedure and col not in out.setdefault(s.procedure, []):
                out[s.procedure].append(col)
    return out


PROCEDURE_COLUMNS: dict[str, list[str]] = _procedure_columns()


_PROCEDURE_OF: dict[str, str] = {f.name: f.procedure for f in FEATURES if f.procedure}


def candidate_procedures(missing: Sequence[Mapping[str, str]]) -> list[str]:
    """Procedures with at least one missing finding, in contract order."""
    wanted = {_PROCEDURE_OF.get(m["feature"]) for m in missing}
    return [p for p in PROCEDURE_COLUMNS if p in wanted]


def next_best(model: Model, rows: np.ndarray, probability: Sequence[float],
              procedures: Sequence[Sequence[str]]) -> list[NextAssessment | None]:
    """For each row, the candidate procedure expected to change its probability the most.

    ``procedures`` holds each row's candidates (:func:`candidate_procedures` of the findings
    missing for that row's complaint), so a test is only suggested where it applies.

    A procedure's typical effect on the raw score (log-odds) for this complaint is stored with
    the model (``metadata["procedure_effects"]``: mean |sum of its columns' exact TreeSHAP
    contributions| over training patients who had it). Its expected change of the calibrated
    probability here is that effect times the local slope of the calibration,
    ``slope * p * (1 - p)``: a first-order estimate that costs microseconds, so every request can
    afford it. A test expected to move the probability less than :data:`MIN_EXPECTED_CHANGE` is
    not suggested.
    """
    effects: Mapping[str, Any] = model.metadata.get("procedure_effects", _NO_EFFECTS)
    slope = float(model.calibration["slope"])
    by_complaint = _effects_by_complaint(effects)
    best: list[NextAssessment | None] = []
    for row, p, candidates in zip(rows.tolist(), map(float, probability), procedures,
                                  strict=True):
        complaint = ROWS.allowed[int(row[_COMPLAINT])]
        here = by_complaint.get(complaint, _NO_EFFECTS)
        local = slope * p * (1 - p)
        ranked = [(local * here[name], name) for name in candidates if name in here]
        change, procedure = max(ranked) if ranked else (0.0, "")
        if not ranked or change < MIN_EXPECTED_CHANGE:
            best.append(None)
            continue
        columns = effects[procedure]["columns"]
        missing = [c for c in columns if row[_COLUMN_INDEX[c]] != row[_COLUMN_INDEX[c]]]  # NaN
        first = column_feature(missing[0] if missing else columns[0])
        best.append(NextAssessment(
            procedure=procedure, feature=missing[0] if missing else first.name,
            features=missing, label=procedure, group=first.group,
            expected_change=round(change, 4),
            text=f"Next: {procedure}. Its result typically moves an estimate like this one by "
                 f"about {100 * change:.0f} percentage points."))
    return best


_NO_EFFECTS: Mapping[str, Any] = {}
_EFFECTS: dict[int, tuple[Mapping[str, Any], dict[str, dict[str, Any]]]] = {}


def _effects_by_complaint(effects: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A model's ``procedure_effects`` turned around: complaint -> procedure -> its typical
    effect on the raw score, once per model (as :func:`cds.safety.population_warnings` keeps
    its ranges)."""
    hit = _EFFECTS.get(id(effects))
    if hit is None or hit[0] is not effects:
        table: dict[str, dict[str, Any]] = {}
        for name, effect in effects.items():
            for complaint, value in effect.get("mean_abs_log_odds", {}).items():
                table.setdefault(complaint, {})[name] = value
        if len(_EFFECTS) > 8:  # models come and go with hot reloads; keep a few
            _EFFECTS.clear()
        hit = _EFFECTS[id(effects)] = (effects, table)
    return hit[1]
