"""Contributions in percentage points of probability, along the calibrated curve.

The exact contributions are additive on the model's raw score (log-odds), not on probability:
the same +0.5 moves 10% to 14% but 50% to 62%. To say how much each finding moved *this*
patient's probability, the contributions are walked in order from the starting point (the
complaint's base rate) to the patient's raw score, and each one is credited with the change of
calibrated probability over its own step:

    change_k = P(s + c_1 + ... + c_k) - P(s + c_1 + ... + c_{k-1})

where ``P`` is the calibration (:meth:`cds.model.Model.probability`) and the order is the order
the explanation lists them in (largest contribution first). The changes add up exactly to
``P(raw) - P(s)`` (the sum telescopes), and each keeps its contribution's sign (``P`` is
increasing). The credit of a step depends on where on the curve it is taken, hence on the order;
the order is stated with the method, and a finding's log-odds contribution, which does not
depend on the order, stays in the API beside it.

For the page and cards, :func:`whole_points` rounds the changes to whole percentage points
(29, not 28.95) so that the points shown add up to the rounded probability minus the rounded
starting probability (largest remainder).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

METHOD = ("sequential along the calibrated curve: from the starting point, each contribution "
          "in the listed order (largest first) is credited with the change of calibrated "
          "probability over its own step; the changes add up exactly to the probability minus "
          "the starting probability")


def probability_changes(start: float, contributions: Sequence[float],
                        probability: Callable[[float], float]) -> list[float]:
    """Each contribution's change of probability, walked in the order given from ``start``."""
    changes = []
    z = start
    before = probability(z)
    for c in contributions:
        z += c
        after = probability(z)
        changes.append(after - before)
        before = after
    return changes


def whole_points(start_probability: float, changes: Sequence[float]) -> list[int]:
    """``changes`` in whole percentage points adding up to the shown change.

    The shown change is ``round(100 * end) - round(100 * start)``; each change is rounded, then
    the rounding error is given back (one point at a time) to the changes rounded furthest from
    their exact value.
    """
    exact = [100 * c for c in changes]
    end = start_probability + sum(changes)
    target = round(100 * end) - round(100 * start_probability)
    points = [round(x) for x in exact]
    gap = target - sum(points)
    if gap:  # (often none: then nothing to give back, and nothing to sort)
        step = 1 if gap > 0 else -1
        # the most under-rounded first when points are missing, the most over-rounded in excess
        keys = [step * (p - x) for p, x in zip(points, exact, strict=True)]
        for i in sorted(range(len(exact)), key=keys.__getitem__)[:abs(gap)]:
            points[i] += step
    return points
