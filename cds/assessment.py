"""The Assessment: the one result type every front end renders (card, RiskAssessment, JSON, HTML).

Front ends compute nothing clinical: everything they show is in here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DISCLAIMER = ("Decision support only. The shipped model is trained on a SIMULATED cohort, not on "
              "patient outcomes: retrain and validate it on local outcomes before clinical use. "
              "Cross-sectional weakness is not proof of cause; no single finding is decisive.")


@dataclass(slots=True)
class Factor:
    """One recorded finding's exact TreeSHAP contribution to a complaint's raw score (log-odds).

    ``probability_change`` is the same contribution in probability (0-1) along the calibrated
    curve (:func:`cds.explain.probability_changes`); ``points`` is it in whole percentage points
    as a clinician reads it (rounded so that the points shown add up to the change shown).
    """

    feature: str
    label: str
    value: Any
    unit: str | None
    reference: str | None
    contribution: float
    direction: str
    text: str
    probability_change: float = 0.0
    points: int = 0


@dataclass(slots=True)
class NotRecorded:
    """The findings the model uses that were not recorded (or were set aside), on one line:
    the sum of their exact contributions. Never listed as reasons one by one."""

    count: int
    features: list[str]
    contribution: float
    direction: str
    text: str
    probability_change: float = 0.0
    points: int = 0


@dataclass(frozen=True)
class NextAssessment:
    """The missing test that would most change the estimate, with its expected change."""

    procedure: str
    feature: str
    features: list[str]
    label: str
    group: str
    expected_change: float
    text: str


@dataclass(frozen=True)
class ComplaintResult:
    """The estimate for one presenting complaint.

    The explanation starts at ``starting_point``: the model's base value plus the complaint's
    own contribution (the base rate for this complaint, in log-odds; ``starting_probability``
    calibrated). Then ``factors`` (recorded findings) and ``not_recorded`` (one line) lead
    exactly to ``raw_score``: ``starting_point + sum(factors) + not_recorded == raw_score``.
    """

    complaint: str
    complaint_label: str
    probability: float
    band: str
    raw_score: float
    base_value: float
    starting_point: float
    starting_probability: float
    factors: list[Factor]
    not_recorded: NotRecorded | None
    missing: list[dict[str, str]]
    next_best_assessment: NextAssessment | None


@dataclass(frozen=True)
class Assessment:
    """The whole answer for one patient record.

    ``action`` is ``refer`` when a red flag is present: then ``results`` is empty (no
    probability, band, factor, raw score or next test exists to show) and ``referral`` says
    what to do. Otherwise ``action`` is ``assess``, one result per complaint, ``referral`` null.
    """

    model: dict[str, str]
    action: str
    red_flags: list[dict[str, str]]
    warnings: list[dict[str, str]]
    results: list[ComplaintResult] = field(default_factory=list)
    referral: str | None = None
    disclaimer: str = DISCLAIMER

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the public Assessment contract)."""
        out = _read_assessment(self)
        out["results"] = [_result_dict(r) for r in self.results]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assessment:
        """The Assessment back from its :meth:`to_dict` form (a stored result); the inverse of
        :meth:`to_dict` (``Assessment.from_dict(a.to_dict()) == a``).

        A result stored before starting points has none: its ``starting_point`` is read as the
        base value (where its explanation started) and its ``starting_probability`` as NaN (not
        kept; no renderer of stored results shows it). Fields added since with a default take it.
        """
        return cls(model=dict(data["model"]), action=data["action"],
                   red_flags=list(data["red_flags"]), warnings=list(data["warnings"]),
                   results=[_result_from(r) for r in data.get("results", [])],
                   referral=data.get("referral"),
                   disclaimer=data.get("disclaimer", DISCLAIMER))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _reader(cls: type) -> Callable[[Any], dict[str, Any]]:
    """A function giving an instance of dataclass ``cls`` as a dict of its fields, in field
    order, without ``asdict``'s deep copies: one dict display of attribute reads, compiled once
    from :func:`dataclasses.fields` (as ``dataclasses`` compiles ``__init__``), about a third of
    the cost of a comprehension of ``getattr`` calls (every request reads some 25 objects)."""
    names = _field_names(cls)
    if not all(name.isidentifier() for name in names):
        raise TypeError(f"{cls.__name__}: a field name is not an identifier")
    items = ", ".join(f"{name!r}: o.{name}" for name in names)
    namespace: dict[str, Any] = {}
    exec(f"def read(o):\n    return {{{items}}}\n", namespace)  # our own field names only
    read: Callable[[Any], dict[str, Any]] = namespace["read"]
    return read


def _result_dict(result: ComplaintResult) -> dict[str, Any]:
    out = _read_result(result)
    out["factors"] = [_read_factor(f) for f in result.factors]
    absent, nxt = result.not_recorded, result.next_best_assessment
    out["not_recorded"] = None if absent is None else _read_not_recorded(absent)
    out["next_best_assessment"] = None if nxt is None else _read_next(nxt)
    return out


_read_assessment = _reader(Assessment)
_read_result = _reader(ComplaintResult)
_read_factor = _reader(Factor)
_read_not_recorded = _reader(NotRecorded)
_read_next = _reader(NextAssessment)


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = _field_names(cls)
    return {k: v for k, v in data.items() if k in names}


def _result_from(r: Mapping[str, Any]) -> ComplaintResult:
    nxt, absent = r.get("next_best_assessment"), r.get("not_recorded")
    return ComplaintResult(**{
        **_known(ComplaintResult, r),
        "starting_point": r.get("starting_point", r["base_value"]),
        "starting_probability": r.get("starting_probability", math.nan),
        "factors": [Factor(**_known(Factor, f)) for f in r["factors"]],
        "not_recorded": None if absent is None else NotRecorded(**_known(NotRecorded, absent)),
        "missing": list(r["missing"]),
        "next_best_assessment": None if nxt is None else NextAssessment(
            **_known(NextAssessment, nxt))})
