"""The patient's handout: plain words at a 12-year-old's reading level, from the Assessment."""

from __future__ import annotations

import re
from typing import Any

import pytest
import textstat

import cds
from cds.assessment import Assessment, ComplaintResult, Factor
from cds.model import Model
from cds.render.handout import EVERYDAY, found_lines, handout, handout_pdf
from tests.conftest import load_example

EXAMPLES = ("runner_pfp_hip_driven", "intake_only_pfp_and_lbp", "cyclist_itbs", "lbp_radicular",
            "red_flag_trauma_swelling")
# words a patient should not meet: anatomy and statistics from the clinician's page
JARGON = ("gluteus", "medius", "abduct", "probability", "odds", "calibrat", "contribution",
          "pathology", "trendelenburg", "dynamometr", "kinematic", "patellofemoral", "iliotibial",
          "model", "algorithm", "percentile", "estimate", "band", "risk score", "shap", "%",
          "n·m/kg", "refer /", "red flag")
pytestmark = pytest.mark.shipped


def assessment(model: Model, name: str) -> Assessment:
    return cds.assess(load_example(name), model=model)


def _found(**factor: Any) -> list[str]:
    """The handout's found lines for one complaint with this one factor."""
    f = Factor(label="", unit=None, direction="", text="", **factor)
    return found_lines([ComplaintResult("pfp", "", 0.5, "moderate", 0.0, 0.0, 0.0, 0.5, [f],
                                        None, [], None)])


@pytest.mark.parametrize("name", EXAMPLES)
def test_handout_reads_at_grade_7_or_below_with_no_jargon(shipped_model: Model, name: str
                                                           ) -> None:
    text = handout(assessment(shipped_model, name)).text()
    grade = textstat.flesch_kincaid_grade(text)
    assert grade <= 7, (name, grade)
    lowered = text.lower()
    assert [w for w in JARGON if w in lowered] == []


def test_every_everyday_phrase_reads_at_grade_7_or_below() -> None:
    text = " ".join(EVERYDAY.values())
    assert textstat.flesch_kincaid_grade(text) <= 7


def test_hip_driven_handout_says_what_was_found_and_what_it_may_mean(shipped_model: Model
                                                                      ) -> None:
    h = handout(assessment(shipped_model, "runner_pfp_hip_driven"), patient="4711-A",
                date="3 December 2026")
    sections = dict(h.sections)
    assert [*sections] == ["What we found", "What it may mean", "What happens next",
                           "About this sheet"]
    found = sections["What we found"]
    assert EVERYDAY["hip_abduction_asymmetry_pct"] in found  # 29% weaker on one side
    assert EVERYDAY["lateral_hip_pain"] in found
    assert "front of your knee" in sections["What it may mean"][0]
    assert "helps your physio" in sections["About this sheet"][0]


def test_findings_inside_the_pain_free_range_or_lowering_the_estimate_are_not_listed() -> None:
    factor: dict[str, Any] = {"feature": "single_leg_squat_pelvic_drop_deg", "reference": "1-9",
                              "contribution": 0.4}
    assert _found(**factor, value=8.0) == []  # inside 1-9
    assert _found(**factor, value=12.0) == [EVERYDAY["single_leg_squat_pelvic_drop_deg"]]
    assert _found(**{**factor, "contribution": -0.1}, value=12.0) == []
    assert _found(feature="lateral_hip_pain", value="no", reference=None, contribution=0.2) == []


def test_red_flag_handout_sends_to_a_doctor_and_gives_no_number(shipped_model: Model) -> None:
    h = handout(assessment(shipped_model, "red_flag_trauma_swelling"))
    text = h.text()
    assert "see a doctor" in text
    assert "What we found" not in dict(h.sections)
    assert not re.search(r"\d", text)  # no probability, no points, no number at all


def test_handout_pdf_is_a_pdf_with_the_same_words(shipped_model: Model) -> None:
    h = handout(assessment(shipped_model, "runner_pfp_hip_driven"), patient="4711-A")
    pdf = handout_pdf(h)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/Title (Your visit: what we found)" in pdf


def test_handout_page_and_pdf_are_served_for_a_stored_assessment(client: Any) -> None:
    from tests.test_ui import post

    response = post(client, {**load_example("runner_pfp_hip_driven"), "patient_id": "4711-A"})
    path = response.headers["Location"]
    page = client.get(f"{path}/handout")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Your visit: what we found" in html and "For 4711-A" in html
    assert f'href="{path}/handout.pdf"' in html
    pdf = client.get(f"{path}/handout.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-")
    assert client.get("/ui/assessments/no-such-id/handout.pdf").status_code == 404
