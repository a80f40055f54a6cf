"""The Assessment: the one result type every front end renders (card, RiskAssessment, JSON, HTML).

Front ends compute nothing clinical: everything they show is in here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

DISCLAIMER = ("Decision support only. The shipped model is trained on a SIMULATED cohort, not on "
              "patient outcomes: retrain and validate it on local outcomes before clinical use. "
              "Cross-sectional weakness is not proof of cause; no single finding is decisive.")


@dataclass(slots=True)
class Factor:
    """One feature's exact TreeSHAP contribution to a complaint's raw score (log-odds)."""

    feature: str
    label: str
    value: Any
    unit: str | None
    reference: str | None
    contribution: float
    direction: str
    text: str


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
    """The estimate for one presenting complaint."""

    complaint: str
    complaint_label: str
    probability: float
    band: str
    raw_score: float
    base_value: float
    factors: list[Factor]
    missing: list[dict[str, str]]
    next_best_assessment: NextAssessment | None


@dataclass(frozen=True)
class Assessment:
    """The whole answer for one patient record."""

    model: dict[str, str]
    action: str
    red_flags: list[dict[str, str]]
    warnings: list[dict[str, str]]
    results: list[ComplaintResult] = field(default_factory=list)
    disclaimer: str = DISCLAIMER

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the public Assessment contract)."""
        out = _shallow(self)
        out["results"] = [_result_dict(r) for r in self.results]
        return out


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _shallow(value: Any) -> dict[str, Any]:
    """A dataclass as a dict of its fields, without ``asdict``'s deep copies (every request)."""
    return {name: getattr(value, name) for name in _field_names(type(value))}


def _result_dict(result: ComplaintResult) -> dict[str, Any]:
    out = _shallow(result)
    out["factors"] = [_shallow(f) for f in result.factors]
    nxt = result.next_best_assessment
    out["next_best_assessment"] = None if nxt is None else _shallow(nxt)
    return out
