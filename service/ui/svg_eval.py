"""The model page's evaluation plots, drawn as SVG from the model's stored evaluation.

Two drawings, from ``model_facts.json`` (written at training from held-out data and verified with
the rest of the artefact): the calibration plot (observed against predicted probability per bin,
with each bin's 95% interval, against the diagonal of perfect calibration) and the decision curve
(net benefit of examining by the model's estimate, of examining everyone, and of examining no one,
at each threshold probability stored). Same conventions as :mod:`cds.render.svg`: classes, no style
attribute, a title and a description; the page shows the numbers as tables too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from cds.render.svg import _num, _svg, _text

SIZE = 360
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 14, 44


def _frame(x_max: float, y_lo: float, y_hi: float, x_label: str, y_label: str
           ) -> tuple[list[str], Any, Any]:
    plot_w, plot_h = SIZE - LEFT - RIGHT, SIZE - TOP - BOTTOM

    def x(v: float) -> float:
        return LEFT + plot_w * v / x_max

    def y(v: float) -> float:
        return TOP + plot_h * (y_hi - v) / (y_hi - y_lo)

    body = []
    for i in range(6):
        vx = x_max * i / 5
        body.append(f'<line class="wf-grid" x1="{_num(x(vx))}" y1="{TOP}" x2="{_num(x(vx))}" '
                    f'y2="{_num(TOP + plot_h)}"/>')
        body.append(_text(x(vx), TOP + plot_h + 16, f"{100 * vx:.0f}%", "wf-tick", "middle"))
        vy = y_lo + (y_hi - y_lo) * i / 5
        body.append(f'<line class="wf-grid" x1="{LEFT}" y1="{_num(y(vy))}" x2="{_num(x(x_max))}" '
                    f'y2="{_num(y(vy))}"/>')
        body.append(_text(LEFT - 6, y(vy) + 4, f"{100 * vy:.0f}%" if y_lo >= 0 else f"{vy:.2f}",
                          "wf-tick", "end"))
    body.append(_text(LEFT + plot_w / 2, SIZE - 8, x_label, "wf-axis-label", "middle"))
    body.append(f'<text class="wf-axis-label" transform="translate(12 {_num(TOP + plot_h / 2)}) '
                f'rotate(-90)" text-anchor="middle">{y_label}</text>')
    return body, x, y


def calibration_plot(bins: Sequence[Mapping[str, float]], ident: str = "calib") -> Markup:
    """Observed against predicted per bin, with 95% intervals, and the diagonal."""
    top = max(0.1, *(max(b["predicted"], b.get("hi", b["observed"])) for b in bins))
    top = min(1.0, round(top + 0.05, 1))
    body, x, y = _frame(top, 0.0, top, "Predicted probability", "Observed proportion")
    body.append(f'<line class="ev-ideal" x1="{_num(x(0))}" y1="{_num(y(0))}" x2="{_num(x(top))}" '
                f'y2="{_num(y(top))}"/>')
    for b in bins:
        if "lo" in b and "hi" in b:
            body.append(f'<line class="ev-ci" x1="{_num(x(b["predicted"]))}" '
                        f'y1="{_num(y(b["lo"]))}" x2="{_num(x(b["predicted"]))}" '
                        f'y2="{_num(y(b["hi"]))}"/>')
        body.append(f'<circle class="ev-point" cx="{_num(x(b["predicted"]))}" '
                    f'cy="{_num(y(b["observed"]))}" r="4"/>')
    desc = "; ".join(f"predicted {100 * b['predicted']:.0f}%, observed {100 * b['observed']:.0f}%"
                     for b in bins)
    return _svg("ev-plot", ident, SIZE, SIZE, "Calibration on held-out data", desc, body)


def decision_curve(points: Sequence[Mapping[str, float]], ident: str = "dca") -> Markup:
    """Net benefit against threshold probability: the model, examine all, examine none."""
    x_max = min(1.0, round(max(p["threshold"] for p in points) + 0.1, 1))
    values = [v for p in points for v in (p["net_benefit_model"], p["net_benefit_examine_all"])]
    y_hi = max(0.05, *values) * 1.1
    y_lo = max(-y_hi, min(0.0, *values))
    body, x, y = _frame(x_max, y_lo, y_hi, "Threshold probability", "Net benefit")

    def clamp(v: float) -> float:
        return max(y_lo, v)

    for key, cls in (("net_benefit_examine_all", "ev-all"), ("net_benefit_model", "ev-model")):
        path = " ".join(f"{_num(x(p['threshold']))},{_num(y(clamp(p[key])))}" for p in points)
        body.append(f'<polyline class="{cls}" points="{path}"/>')
        for p in points:
            body.append(f'<circle class="{cls}-point" cx="{_num(x(p["threshold"]))}" '
                        f'cy="{_num(y(clamp(p[key])))}" r="3.5"/>')
    body.append(f'<line class="ev-none" x1="{_num(x(0))}" y1="{_num(y(0))}" '
                f'x2="{_num(x(x_max))}" y2="{_num(y(0))}"/>')
    desc = "; ".join(f"at {100 * p['threshold']:.0f}%: model {p['net_benefit_model']:.3f}, "
                     f"examine all {p['net_benefit_examine_all']:.3f}, examine none 0"
                     for p in points)
    return _svg("ev-plot", ident, SIZE, SIZE, "Decision curve on held-out data", desc, body)
