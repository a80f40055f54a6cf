"""The patient's handout: what was found, what it may mean, what happens next, in plain words.

A renderer of the typed :class:`~cds.assessment.Assessment` that computes nothing clinical. It is
written for a reading age of about 12 (Flesch-Kincaid grade <= 7, tested with ``textstat``),
with no jargon: no muscle names, no model, no odds, no numbers a patient cannot use. A red flag
gives a referral and no estimate in any words. :func:`handout` gives the words (the service shows
them as a printable page); :func:`handout_pdf` draws them as a PDF with ``reportlab``, imported
only when a PDF is drawn (``import cds`` stays light; no browser is needed at run time).

What was found lists only the recorded findings that raised the estimate and lie outside the
pain-free range (a yes to a symptom or sign, or a measurement outside its reference range),
each in everyday words from :data:`EVERYDAY` (a finding without everyday words is left out).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..assessment import Assessment, ComplaintResult, Factor

TITLE = "Your visit: what we found"
EVERYDAY = {
    "hip_abduction_asymmetry_pct": "The muscles on the side of one hip were weaker than on the "
                                   "other side.",
    "hip_abduction_symptomatic_nm_per_kg": "The muscles on the side of your hip were weaker "
                                           "than usual.",
    "hip_abduction_left_nm_per_kg": "The muscles on the side of your left hip were weaker "
                                    "than usual.",
    "hip_abduction_right_nm_per_kg": "The muscles on the side of your right hip were weaker "
                                     "than usual.",
    "lateral_hip_pain": "You have pain on the outside of your hip.",
    "trendelenburg_sign": "When you stood on one leg, your hip dropped on the other side.",
    "single_leg_stance_30s_pain": "Standing on one leg for half a minute was painful.",
    "trochanter_tenderness": "The bony spot on the outside of your hip was sore to touch.",
    "single_leg_squat_pelvic_drop_deg": "Your hips tipped to one side when you did a squat "
                                        "on one leg.",
    "running_pelvic_drop_deg": "Your hips tipped to one side when you ran.",
    "single_leg_squat_knee_fppa_deg": "Your knee moved in toward the other knee when you did "
                                      "a squat on one leg.",
    "single_leg_squat_trunk_lean_deg": "Your body leaned to the side when you did a squat on "
                                       "one leg.",
    "pain_worse_single_leg_loading": "Your pain gets worse when you stand or land on one leg.",
    "pain_worse_late_in_activity": "Your pain gets worse near the end of a run or a game.",
    "prior_local_care_no_improvement": "Care aimed only at the sore spot has not helped "
                                       "much.",
}
WHERE = {"pfp": "the pain at the front of your knee", "itbs": "the pain on the outside of "
         "your knee", "lbp": "your low back pain"}
MEANING = {
    "high": "Weak hip muscles may be a main cause of {where}.",
    "moderate": "Weak hip muscles may play a part in {where}.",
    "low": "Weak hip muscles are probably not the main cause of {where}. Other causes are "
           "more likely.",
}
NEXT_TEST = {"exam": "Next, your physio may test how strong your hip muscles are, or check how "
                     "your hip moves.",
             "movement": "Next, your physio may film you doing a squat on one leg, or running, "
                         "to see how your hips move.",
             "intake": "Next, your physio may ask you a few more questions about your pain."}
AFTER = {"high": "Exercises that make your hip muscles stronger may help. Your physio will "
                 "show you how.",
         "moderate": "Exercises for your hip muscles may help. Your physio will check other "
                     "causes too.",
         "low": "Your physio will look for other causes of your pain."}
REFER = ("Some of your answers mean a doctor should check you first. Please see a doctor "
         "soon, as your physio told you. We did not look at your hip muscles today. That can "
         "wait until the doctor has seen you.")
SUPPORT = ("This sheet comes from a computer tool that helps your physio think. It does not "
           "make the choice. Your physio has seen you and knows you best. Ask them if you "
           "have any questions.")
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:-|to)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Handout:
    """The handout's words: a title, who and when, and sections of plain paragraphs."""
    title: str
    patient: str | None
    date: str
    sections: list[tuple[str, list[str]]] = field(default_factory=list)

    def text(self) -> str:
        """Every word of it, for reading-level and jargon checks."""
        return "\n".join([self.title, *(f"{h}\n" + "\n".join(ps) for h, ps in self.sections)])


def _outside(factor: Factor) -> bool:
    """A finding outside the pain-free range: a yes, or a number outside its reference."""
    value = factor.value
    if value == "yes" or value is True:
        return True
    found = _RANGE.match(str(factor.reference or ""))
    if found is None or not isinstance(value, int | float) or isinstance(value, bool):
        return False
    low, high = float(found.group(1)), float(found.group(2))
    return not low <= value <= high


def found_lines(results: Sequence[ComplaintResult]) -> list[str]:
    """Everyday words for each finding that raised an estimate and is outside the pain-free
    range, once each, in the order the explanation ranked them."""
    lines: list[str] = []
    for r in results:
        for f in r.factors:
            words = EVERYDAY.get(f.feature)
            if words and f.contribution > 0 and _outside(f) and words not in lines:
                lines.append(words)
    return lines


def handout(assessment: Assessment, *, patient: str | None = None, date: str = "") -> Handout:
    """The handout of one assessment."""
    sections: list[tuple[str, list[str]]] = []
    if assessment.action == "refer":
        sections.append(("What happens next", [REFER]))
    else:
        results = assessment.results
        found = found_lines(results) or ["None of the tests we did today was outside the "
                                         "usual range."]
        sections.append(("What we found", found))
        sections.append(("What it may mean", [MEANING[r.band].format(
            where=WHERE.get(r.complaint, "your pain")) for r in results]))
        nxt = [NEXT_TEST.get(r.next_best_assessment.group, NEXT_TEST["exam"])
               for r in results if r.next_best_assessment]
        bands = [r.band for r in results]
        best = "high" if "high" in bands else "moderate" if "moderate" in bands else "low"
        sections.append(("What happens next", [*dict.fromkeys(nxt), AFTER[best]]))
    sections.append(("About this sheet", [SUPPORT]))
    return Handout(TITLE, patient, date, sections)


def handout_pdf(h: Handout) -> bytes:
    """The handout as an A4 PDF (reportlab, imported here: only a PDF request pays for it)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import ListFlowable, Paragraph, SimpleDocTemplate, Spacer

    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    body.fontSize, body.leading = 13, 18
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=h.title, author="Hip driver assessment",
                            leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm)
    story: list[Any] = [Paragraph(_escape(h.title), styles["Title"])]
    who = " · ".join(x for x in (f"For {h.patient}" if h.patient else "", h.date) if x)
    if who:
        story.append(Paragraph(_escape(who), body))
    for heading, paragraphs in h.sections:
        story += [Spacer(1, 4 * mm), Paragraph(_escape(heading), styles["Heading2"])]
        if heading == "What we found" and len(paragraphs) > 1:
            story.append(ListFlowable([Paragraph(_escape(p), body) for p in paragraphs],
                                      bulletType="bullet"))
        else:
            story += [Paragraph(_escape(p), body) for p in paragraphs]
    doc.build(story)
    return out.getvalue()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
