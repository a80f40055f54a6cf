"""Our own SVG drawings: the waterfall adds up, the scale marks the model's bands, text is escaped."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from typing import Any

import pytest

import cds
from cds.render.svg import (
    SCALE_WIDTH,
    TOP_FACTORS,
    factor_detail,
    probability_scale,
    waterfall,
    waterfall_rows,
)
from tests.conftest import load_example

SVG = "{http://www.w3.org/2000/svg}"


def factor(label: str, contribution: float, **extra: Any) -> dict[str, Any]:
    return {"feature": label, "label": label, "value": extra.get("value", 1.0),
            "unit": extra.get("unit"), "reference": extra.get("reference"),
            "contribution": contribution,
            "direction": "raises" if contribution > 0 else "lowers", "text": label}


@pytest.fixture
def result(tiny_model: cds.Model) -> dict[str, Any]:
    out: dict[str, Any] = cds.assess(load_example("runner_pfp_hip_driven"),
                                     model=tiny_model).to_dict()["results"][0]
    return out


def test_waterfall_runs_from_the_complaints_starting_point_to_the_raw_score(
        result: dict[str, Any]) -> None:
    rows = waterfall_rows(result["starting_point"], result["raw_score"], result["factors"],
                          not_recorded=result["not_recorded"])
    assert rows[0].kind == "base" and rows[0].start == result["starting_point"]
    assert rows[-1].kind == "total" and rows[-1].end == result["raw_score"]
    for before, after in itertools.pairwise(rows[:-1]):
        assert after.start == pytest.approx(before.end)
    assert rows[-2].end == pytest.approx(result["raw_score"], abs=1e-6)  # TreeSHAP adds up


def test_waterfall_labels_bars_in_whole_percentage_points(result: dict[str, Any]) -> None:
    rows = waterfall_rows(result["starting_point"], result["raw_score"], result["factors"])
    top = result["factors"][0]
    assert rows[1].shift == f"{top['points']:+d} pts"


def test_the_not_recorded_findings_are_one_bar() -> None:
    factors = [factor("a", 0.4)]
    absent = {"count": 5, "features": list("vwxyz"), "contribution": -0.3, "points": -6}
    rows = waterfall_rows(-1.0, -0.9, factors, not_recorded=absent)
    assert [r.label for r in rows] == ["Starting point", "a", "Not recorded (5 findings)",
                                       "This patient's score"]
    assert rows[2].end - rows[2].start == pytest.approx(-0.3) and rows[2].shift == "-6 pts"


def test_waterfall_shows_the_top_factors_and_sums_the_rest() -> None:
    factors = [factor(f"finding {i}", 0.5 - 0.04 * i) for i in range(TOP_FACTORS + 4)]
    rows = waterfall_rows(-1.0, -1.0 + sum(f["contribution"] for f in factors), factors)
    assert [r.label for r in rows[1:TOP_FACTORS + 1]] == [f"finding {i}" for i in range(TOP_FACTORS)]
    assert rows[TOP_FACTORS + 1].label == "4 other findings together"
    assert rows[TOP_FACTORS + 1].end - rows[TOP_FACTORS + 1].start == pytest.approx(
        sum(f["contribution"] for f in factors[TOP_FACTORS:]))
    assert len(rows) == TOP_FACTORS + 3
    assert [r.kind for r in rows[1:3]] == ["raise", "raise"]


def test_factor_row_says_value_unit_reference_and_direction() -> None:
    detail = factor_detail(factor("torque", -0.3, value=1.08, unit="N·m/kg", reference="0.9-2.0"))
    assert detail == "1.08 N·m/kg  ·  pain-free 0.9-2.0 N·m/kg  ·  ▼ lowers"
    assert factor_detail(factor("pelvic drop", 0.2, value=None, unit="°")).startswith("not recorded")


def test_waterfall_is_valid_svg_with_one_group_per_row(result: dict[str, Any]) -> None:
    markup = waterfall(result["base_value"], result["raw_score"], result["factors"], "wf-0")
    root = ET.fromstring(str(markup))
    groups = root.findall(f"{SVG}g")
    assert len(groups) == len(waterfall_rows(result["base_value"], result["raw_score"],
                                             result["factors"]))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "wf-0-t wf-0-d"
    assert root.find(f"{SVG}desc") is not None
    raising = [g for g in groups if g.get("class") == "wf-row wf-raise"]
    for g in raising:  # a raising bar starts left of its label of change
        bar = g.find(f"{SVG}rect")
        assert bar is not None and float(bar.get("width", "0")) > 0


def test_bars_lengths_are_proportional_to_contributions() -> None:
    factors = [factor("a", 0.8), factor("b", -0.4)]
    root = ET.fromstring(str(waterfall(0.0, 0.4, factors, "w")))
    widths = [float(r.get("width", "nan")) for r in root.iter(f"{SVG}rect")
              if r.get("class") == "wf-bar"]
    assert widths[0] == pytest.approx(2 * widths[1], rel=0.02)


def test_scale_divides_at_the_model_band_thresholds() -> None:
    root = ET.fromstring(str(probability_scale(0.55, {"moderate_from": 0.2, "high_from": 0.4},
                                               "high", "s")))
    zones = {r.get("class"): r for r in root.iter(f"{SVG}rect")}
    left = float(zones["scale-zone scale-low"].get("x", "nan"))
    span = SCALE_WIDTH - 2 * left
    def x(zone: str) -> float:
        return float(zones[f"scale-zone scale-{zone}"].get("x", "nan"))
    assert x("moderate") == pytest.approx(left + 0.2 * span, abs=0.1)
    assert x("high") == pytest.approx(left + 0.4 * span, abs=0.1)
    marker = next(line for line in root.iter(f"{SVG}line") if line.get("class") == "scale-marker")
    assert float(marker.get("x1", "nan")) == pytest.approx(left + 0.55 * span, abs=0.1)
    assert "55%" in "".join(root.itertext())


def test_scale_without_bands_says_so() -> None:
    root = ET.fromstring(str(probability_scale(0.3, None, "moderate", "s")))
    assert len([r for r in root.iter(f"{SVG}rect")]) == 1
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "not available" in (desc.text or "")


def test_text_is_escaped_and_no_style_attribute_is_written() -> None:
    markup = str(waterfall(0.0, 1.0, [factor("<script>alert(1)</script> & co", 1.0)], "w"))
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert "style=" not in markup
    ET.fromstring(markup)  # still well-formed XML


def test_axis_ticks_are_round_numbers() -> None:
    root = ET.fromstring(str(waterfall(-1.4, 1.4, [factor("a", 2.8)], "w")))
    ticks = [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == "wf-tick"]
    values = [float(t) for t in ticks]
    steps = {round(b - a, 6) for a, b in itertools.pairwise(values)}
    assert len(steps) == 1 and math.log2(steps.pop() * 4).is_integer()
