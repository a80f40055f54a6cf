"""Band thresholds chosen by net benefit on held-out data, with the rationale stored beside them.

Each band boundary is the point at which a clinician acts differently, so each is tied to one
decision and to the threshold probability of that decision (Vickers & Elkin 2006: the threshold
probability ``t`` is where the expected harm of acting on a patient without the condition
equals the expected benefit of acting on one with it, ``harm:benefit = t:(1-t)``):

* ``moderate``: examine the hip (hand-held dynamometry, single-leg tests: about ten minutes,
  no harm). Threshold probability 20%: examining a patient whose pain has no hip driver is
  worth a quarter of missing a driver (1:4). Reasonable preferences span 10-30%.
* ``high``: offer a hip-focused programme as the first-line treatment (instead of knee- or
  back-focused care). Threshold probability 40%: weeks of the wrong programme weigh two thirds
  of a missed driver (2:3). Reasonable preferences span 30-50%.

On held-out data, the cut-off on the calibrated probability is the one (within the decision's
span, in steps of 1%) that maximises the net benefit ``TP/n - FP/n * t/(1-t)`` at the
decision's threshold probability. For a perfectly calibrated model it is the threshold
probability itself; residual miscalibration moves it. When no cut-off beats both "examine all"
and "examine none", the model adds nothing to that decision: the boundary stays at the
threshold probability and the metadata says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Decision:
    """What a band boundary decides, and how much acting wrongly weighs against missing."""

    band: str
    action: str
    threshold_probability: float
    harm_benefit: str
    span: tuple[float, float]


DECISIONS: tuple[Decision, ...] = (
    Decision("moderate", "examine the hip (hand-held dynamometry, single-leg tests)", 0.20, "1:4",
             (0.10, 0.30)),
    Decision("high", "offer a hip-focused programme as first-line treatment", 0.40, "2:3",
             (0.30, 0.50)),
)
METHOD = ("net benefit (Vickers & Elkin 2006) on held-out data: for each decision, the cut-off "
          "within the decision's span of reasonable threshold probabilities that maximises net "
          "benefit at its stated threshold probability")


def net_benefit_at(y: np.ndarray, p: np.ndarray, cut_off: float, threshold: float) -> float:
    """Net benefit of acting when ``p >= cut_off``, weighing false positives at ``threshold``."""
    act = p >= cut_off
    n = len(y)
    tp = float((act & (y == 1)).sum())
    fp = float((act & (y == 0)).sum())
    return tp / n - fp / n * threshold / (1 - threshold)


def _choose(y: np.ndarray, p: np.ndarray, d: Decision) -> dict[str, Any]:
    t = d.threshold_probability
    grid = np.round(np.arange(d.span[0], d.span[1] + 1e-9, 0.01), 2)
    benefits = [net_benefit_at(y, p, float(c), t) for c in grid]
    best = int(np.argmax(benefits))
    prevalence = float(np.mean(y))
    examine_all = prevalence - (1 - prevalence) * t / (1 - t)
    adds = benefits[best] > max(examine_all, 0.0)
    cut_off = float(grid[best]) if adds else t
    return {"band": d.band, "action": d.action, "threshold_probability": t,
            "harm_benefit": d.harm_benefit, "span": list(d.span), "cut_off": cut_off,
            "net_benefit_per_100": {
                "model": round(100 * (benefits[best] if adds else net_benefit_at(y, p, t, t)), 2),
                "examine_all": round(100 * examine_all, 2), "examine_none": 0.0},
            "adds_net_benefit": bool(adds)}


def rationale(decisions: list[dict[str, Any]], data: str) -> str:
    """The choice in words, for the model facts, the card and the page."""
    parts = []
    for d in decisions:
        nb = d["net_benefit_per_100"]
        head = (f"'{d['band']}' from {d['cut_off']:.0%}: the point to {d['action']}, at a "
                f"threshold probability of {d['threshold_probability']:.0%} (harm:benefit "
                f"{d['harm_benefit']}).")
        if d["adds_net_benefit"]:
            tail = (f" On held-out data this cut-off gives the most net benefit at that "
                    f"threshold: {nb['model']:.1f} per 100 patients (true positives minus false "
                    f"positives weighted {d['harm_benefit']}), against {nb['examine_all']:.1f} "
                    "examining everyone and 0 examining no one.")
        else:
            tail = (" On held-out data no cut-off beats examining everyone or no one at this "
                    "threshold: the band is informative only, the decision should not rest on it.")
        parts.append(head + tail)
    return " ".join(parts) + f" Data: {data}."


def choose_bands(y: np.ndarray, p: np.ndarray, data: str) -> tuple[dict[str, float], dict[str, Any]]:
    """``bands`` (the metadata's ``moderate_from``/``high_from``) and how they were chosen.

    ``y`` are held-out outcomes, ``p`` the model's calibrated probabilities on them, ``data``
    describes the rows. ``high_from`` is kept above ``moderate_from``.
    """
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    chosen = [_choose(y, p, d) for d in DECISIONS]
    moderate, high = chosen[0]["cut_off"], max(chosen[1]["cut_off"], chosen[0]["cut_off"] + 0.01)
    chosen[1]["cut_off"] = round(high, 2)
    bands = {"moderate_from": moderate, "high_from": round(high, 2)}
    selection = {"method": METHOD, "data": data, "n": len(y), "decisions": chosen,
                 "rationale": rationale(chosen, data)}
    return bands, selection
