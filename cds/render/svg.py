"""Our own SVG drawings for the clinician page: the probability scale and the factor waterfall.

No plotting library: each drawing is a few dozen elements, written as text, escaped, and styled by
class from ``service/static/ui.css`` (no ``style`` attribute anywhere, so the page's
Content-Security-Policy can forbid inline style). Every drawing carries a ``<title>`` and a
``<desc>`` for screen readers; the page also shows the same numbers as text and as a table.

Nothing clinical is computed here: the drawings place numbers an
:class:`~cds.assessment.Assessment` already holds (probability, band thresholds from the model's
metadata, base value, each factor's exact TreeSHAP contribution to the raw score).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, NamedTuple

from markupsafe import Markup

from cds.explain import with_unit

WIDTH = 800
LABEL_WIDTH = 400
CHART_LEFT = LABEL_WIDTH + 16
CHART_RIGHT = WIDTH - 56
ROW_HEIGHT = 38
TOP_FACTORS = 10
SCALE_WIDTH = 760
LABEL_CHARS = 58


def _num(x: float) -> str:
    """A coordinate: short, stable text."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, body: str, cls: str, anchor: str = "start") -> str:
    return (f'<text x="{_num(x)}" y="{_num(y)}" class="{cls}" text-anchor="{anchor}">'
            f"{escape(body)}</text>")


def _clip(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _svg(kind: str, ident: str, width: float, height: float, title: str, desc: str,
         body: list[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="{kind}" viewBox="0 0 {_num(width)} '
            f'{_num(height)}" role="img" aria-labelledby="{ident}-t {ident}-d" '
            f'preserveAspectRatio="xMinYMin meet" focusable="false">'
            f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>')
    return Markup(head + "".join(body) + "</svg>")


# ------------------------------------------------------------------------- probability scale


def probability_scale(probability: float, bands: Mapping[str, float] | None, band: str,
                      ident: str) -> Markup:
    """A 0-100% bar divided into the model's bands, with a marker at ``probability``.

    ``bands`` is the metadata's ``{"moderate_from": .., "high_from": ..}``; without it (a model
    version no longer on disk) the bar is drawn undivided and says so in its description.
    """
    left, right, top, bar_h = 8.0, SCALE_WIDTH - 8.0, 22.0, 18.0
    span = right - left
    def at(p: float) -> float:
        return left + span * min(max(p, 0.0), 1.0)

    body: list[str] = []
    zones: list[tuple[str, float, float]] = [("low", 0.0, 1.0)]
    if bands:
        moderate, high = float(bands["moderate_from"]), float(bands["high_from"])
        zones = [("low", 0.0, moderate), ("moderate", moderate, high), ("high", high, 1.0)]
    for name, lo, hi in zones:
        body.append(f'<rect class="scale-zone scale-{name}" x="{_num(at(lo))}" y="{_num(top)}" '
                    f'width="{_num(at(hi) - at(lo))}" height="{_num(bar_h)}"/>')
        if bands:
            body.append(_text((at(lo) + at(hi)) / 2, top + 13, name, "scale-zone-name", "middle"))
    ticks = sorted({0.0, 1.0, *(lo for _, lo, _ in zones)})
    for t in ticks:
        anchor = "start" if t == 0.0 else "end" if t == 1.0 else "middle"
        body.append(f'<line class="scale-tick" x1="{_num(at(t))}" x2="{_num(at(t))}" '
                    f'y1="{_num(top + bar_h)}" y2="{_num(top + bar_h + 5)}"/>')
        body.append(_text(at(t), top + bar_h + 17, f"{round(100 * t)}%", "scale-tick-label", anchor))
    x = at(probability)
    pct = f"{round(100 * probability)}%"
    anchor = "start" if probability < 0.06 else "end" if probability > 0.94 else "middle"
    body.append(f'<line class="scale-marker" x1="{_num(x)}" x2="{_num(x)}" y1="{_num(top - 4)}" '
                f'y2="{_num(top + bar_h + 4)}"/>')
    body.append(f'<path class="scale-marker-head" d="M{_num(x - 6)} {_num(top - 10)} '
                f'L{_num(x + 6)} {_num(top - 10)} L{_num(x)} {_num(top - 2)} Z"/>')
    body.append(_text(x, top - 13, pct, "scale-marker-label", anchor))
    if bands:
        desc = (f"Estimated probability {pct}, in the {band} band. Bands: low below "
                f"{round(100 * bands['moderate_from'])}%, moderate from "
                f"{round(100 * bands['moderate_from'])}%, high from {round(100 * bands['high_from'])}%.")
    else:
        desc = (f"Estimated probability {pct}, in the {band} band (this model version's band "
                "thresholds are not available to draw).")
    return _svg("prob-scale", ident, SCALE_WIDTH, top + bar_h + 24, "Probability scale with band thresholds",
                desc, body)


# ------------------------------------------------------------------------------ waterfall


def _ticks(lo: float, hi: float) -> list[float]:
    """Round axis ticks (0.25, 0.5, 1 or 2 apart) covering ``lo``-``hi``, about five of them."""
    span = hi - lo
    step = next((s for s in (0.25, 0.5, 1.0, 2.0, 5.0) if span / s <= 6), 10.0)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 6) for i in range(int((hi - first) / step + 1e-9) + 1)]


def factor_value(factor: Mapping[str, Any]) -> str:
    """A factor's value as written on the page: ``1.08 N·m/kg``, ``yes``, ``not recorded``."""
    value = factor.get("value")
    if value is None:
        return "not recorded"
    return with_unit(value, factor.get("unit"))


def factor_detail(factor: Mapping[str, Any]) -> str:
    """The second line of a factor row: value, reference range, direction."""
    parts = [factor_value(factor)]
    if factor.get("reference"):
        unit = factor.get("unit")
        parts.append(f"pain-free {with_unit(factor['reference'], unit)}" if unit
                     else f"pain-free {factor['reference']}")
    parts.append(f"{'▲' if factor['contribution'] > 0 else '▼'} {factor['direction']}")
    return "  ·  ".join(parts)


def _shift(line: Mapping[str, Any], delta: float) -> str:
    """A bar's label: whole percentage points when the line has them, else log-odds."""
    points = line.get("points")
    if points is None:
        return f"{delta:+.2f}"
    return f"{points:+d} pts" if points else ("<1 pt" if delta else "0")


class Row(NamedTuple):
    """One row of the waterfall: where its bar starts and ends on the raw-score axis."""

    label: str
    detail: str
    start: float
    end: float
    kind: str  # base, raise, lower, total
    shift: str = ""


def waterfall_rows(start: float, raw_score: float, factors: Sequence[Mapping[str, Any]],
                   top: int = TOP_FACTORS, *, start_label: str = "Starting point",
                   start_detail: str = "model base value",
                   not_recorded: Mapping[str, Any] | None = None) -> list[Row]:
    """The rows from the starting point to the raw score: the ``top`` factors in the order given
    (largest first), the others together, the findings not recorded on one line, then the
    patient's score. Each bar starts where the previous one ended."""
    rows = [Row(start_label, start_detail, start, start, "base")]
    total = start
    def add(label: str, detail: str, c: float, points: int | None) -> None:
        nonlocal total
        rows.append(Row(label, detail, total, total + c, "raise" if c > 0 else "lower",
                        _shift({"points": points}, c)))
        total += c
    def points_of(lines: Sequence[Mapping[str, Any]]) -> int | None:
        values = [line.get("points") for line in lines]
        return None if any(v is None for v in values) else sum(int(v) for v in values if v)
    for f in factors[:top]:
        add(f["label"], factor_detail(f), float(f["contribution"]), points_of([f]))
    rest = factors[top:]
    if rest:
        add(f"{len(rest)} other findings together", "each smaller than those above",
            sum(float(f["contribution"]) for f in rest), points_of(rest))
    if not_recorded:
        n = not_recorded["count"]
        add(f"Not recorded ({n} finding{'s' if n != 1 else ''})",
            "never a reason: the model's treatment of missing values",
            float(not_recorded["contribution"]), points_of([not_recorded]))
    rows.append(Row("This patient's score", "before calibration to the probability above",
                    raw_score, raw_score, "total"))
    return rows


def waterfall(start: float, raw_score: float, factors: Sequence[Mapping[str, Any]],
              ident: str, top: int = TOP_FACTORS, *, start_label: str = "Starting point",
              start_detail: str = "model base value",
              not_recorded: Mapping[str, Any] | None = None) -> Markup:
    """The factor waterfall (:func:`waterfall_rows`) as SVG.

    Right raises the score, left lowers it. The axis is the model's raw score (log-odds) because
    that is where contributions add up exactly; each bar is labelled with its change of the
    calibrated probability in whole percentage points (when the assessment has them).
    """
    rows = waterfall_rows(start, raw_score, factors, top, start_label=start_label,
                          start_detail=start_detail, not_recorded=not_recorded)
    ends = [v for r in rows for v in (r.start, r.end)]
    lo, hi = min(ends), max(ends)
    pad = max(0.15, 0.08 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    def at(v: float) -> float:
        return CHART_LEFT + (CHART_RIGHT - CHART_LEFT) * (v - lo) / (hi - lo)

    axis_y = 22.0
    body = [_text(CHART_LEFT, 12, "◀ lowers", "wf-axis-note"),
            _text(CHART_RIGHT, 12, "raises ▶", "wf-axis-note", "end")]
    height = axis_y + ROW_HEIGHT * len(rows) + 34
    for t in _ticks(lo, hi):
        body.append(f'<line class="wf-grid" x1="{_num(at(t))}" x2="{_num(at(t))}" '
                    f'y1="{_num(axis_y)}" y2="{_num(height - 30)}"/>')
        body.append(_text(at(t), height - 16, f"{t:+g}" if t else "0", "wf-tick", "middle"))
    body.append(_text((CHART_LEFT + CHART_RIGHT) / 2, height - 2, "model score (log-odds)",
                      "wf-axis-label", "middle"))
    previous_end: float | None = None
    for i, (label, detail, begin, end, kind, shift) in enumerate(rows):
        y = axis_y + ROW_HEIGHT * i
        mid = y + ROW_HEIGHT / 2
        body.append(f'<g class="wf-row wf-{kind}">')
        body.append(f"<title>{escape(label)}: {escape(detail)}</title>")
        body.append(_text(0, mid - 3, _clip(label), "wf-label"))
        body.append(_text(0, mid + 12, _clip(detail, LABEL_CHARS + 8), "wf-detail"))
        if previous_end is not None:
            body.append(f'<line class="wf-link" x1="{_num(at(previous_end))}" '
                        f'x2="{_num(at(previous_end))}" y1="{_num(y - 7)}" y2="{_num(y + 7)}"/>')
        if kind in ("base", "total"):
            body.append(f'<rect class="wf-marker" x="{_num(at(begin) - 3)}" y="{_num(mid - 9)}" '
                        f'width="6" height="18"/>')
            body.append(_text(at(begin) + 9, mid + 4, f"{begin:+.2f}", "wf-value"))
        else:
            x0, x1 = sorted((at(begin), at(end)))
            body.append(f'<rect class="wf-bar" x="{_num(x0)}" y="{_num(mid - 9)}" '
                        f'width="{_num(max(x1 - x0, 1.0))}" height="18"/>')
            delta = end - begin
            if delta > 0:
                body.append(_text(x1 + 5, mid + 4, shift, "wf-value"))
            else:
                body.append(_text(x0 - 5, mid + 4, shift, "wf-value", "end"))
        body.append("</g>")
        previous_end = end
    desc = (f"Waterfall from {start_label.lower()} ({start:+.2f}) to this patient's score "
            f"{raw_score:+.2f}: " + "; ".join(
                f"{r.label} {r.end - r.start:+.2f} ({r.shift})" for r in rows[1:-1]) + ".")
    return _svg("waterfall", ident, WIDTH, height, "How each finding moves the score", desc, body)
