"""An Assessment in words, for a terminal (``cds assess --explain``)."""

from __future__ import annotations

from ..assessment import Assessment

TOP_FACTORS = 6


def as_text(assessment: Assessment) -> str:
    """An Assessment in words. A refer result says only what to do: it has no estimate."""
    model = assessment.model
    lines = [f"{model['id']} {model['version']} (trained on: {model['trained_on']})"]
    if assessment.action == "refer":
        lines.append(f"RED FLAG - {assessment.referral}")
    lines += [f"Warning: {w['message']}" for w in assessment.warnings]
    for r in assessment.results:
        lines.append(f"\n{r.complaint_label}: {r.probability:.0%} ({r.band}) that hip "
                     "abductor weakness drives it")
        lines.append(f"  Starting point for {r.complaint_label.lower()}: "
                     f"{r.starting_probability:.0%}")
        shown = [(f.text, f.contribution) for f in r.factors[:TOP_FACTORS]]
        if r.not_recorded:
            shown.append((r.not_recorded.text, r.not_recorded.contribution))
        lines += [f"  {'+' if c > 0 else '-'} {text} ({c:+.2f})" for text, c in shown]
        if r.missing:
            lines.append("  Missing: " + ", ".join(m["label"] for m in r.missing))
        if r.next_best_assessment:
            lines.append("  " + r.next_best_assessment.text)
    lines.append("\n" + assessment.disclaimer)
    return "\n".join(lines)
