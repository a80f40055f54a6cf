"""Render ``MODEL_CARD.md`` from a model's metadata (the single source of its facts)."""

from __future__ import annotations

from typing import Any

OUTCOME = ("`hip_driver`: hip abductor (gluteus medius) weakness is a driver of this complaint. "
           "In real data a clinician-confirmed outcome: weakness found on assessment AND a "
           "clinically meaningful response (>= 2 points on the 0-10 pain scale, or 'much better' "
           "on a global rating) to a hip-focused programme at 6-8 weeks. The observed label is an "
           "imperfect confirmation (sensitivity ~0.85, specificity ~0.90 against the latent truth).")

LIMITATIONS = (
    "**Trained on simulated data.** The cohort is a structural causal model built from published "
    "priors (see CLINICAL.md); no patient outcome was used. Retrain and validate on local "
    "outcomes before any clinical use.",
    "Cross-sectional weakness is not proven cause: weakness was not a prospective risk factor "
    "for patellofemoral pain (Neal 2019).",
    "Strengthening raises strength without reliably changing running kinematics (Willy 2011; "
    "Kendall 2010), and experimental weakness did not change walking pelvic drop (Pohl 2015): "
    "no single finding is decisive.",
    "Inputs outside the training population are flagged, not extrapolated silently; the "
    "estimate is less reliable there.",
    "Red flags route to referral whatever the probability; the score is not a triage tool.",
)

WHEN_TO_STOP = (
    "Local calibration drifts (observed outcome rate in a band outside its stated range).",
    "Discrimination on local outcomes falls below the logistic baseline.",
    "The feature contract or the care pathway changes (new tests, new definitions).",
)


def _fmt(m: dict[str, Any]) -> str:
    lo, hi = m["auroc_ci95"]
    return (f"| {m['auroc']:.3f} ({lo:.3f}-{hi:.3f}) | {m['brier']:.3f} | "
            f"{m['calibration_intercept']:+.3f} | {m['calibration_slope']:.3f} |")


def render_model_card(meta: dict[str, Any]) -> str:
    """The model card as Markdown."""
    metrics = meta.get("metrics", {})
    lines = [
        f"# Model card: {meta['id']} {meta['version']}",
        "",
        "> **Trained on simulated data. Not validated on patients.** This model demonstrates the "
        "system end to end. It must be retrained on local outcomes and validated before clinical "
        "use.",
        "",
        "## Intended use",
        "At intake, for adults presenting with patellofemoral pain, IT band syndrome or low back "
        "pain: the probability that hip abductor weakness drives each complaint, the factors "
        "behind it, what is missing, and the next best assessment. Users: physiotherapists, "
        "sports and primary-care clinicians. Decision support only: it does not diagnose and does "
        "not replace examination.",
        "",
        "**Not for**: children, acute trauma, post-operative patients, patients with red flags "
        "(these are routed to referral), or complaints other than the three above.",
        "",
        "## Outcome", OUTCOME, "",
        "## Data",
        f"- Trained on: {meta['trained_on']}.",
        f"- Training data: {meta['training_data']}.",
        f"- Split: {meta.get('split_sizes')}.",
        "- Missing data: findings not recorded are left missing; LightGBM routes them natively "
        "(missingness follows the care setting: intake only, exam, movement analysis).",
        "",
        "## Model",
        f"- LightGBM, {meta['trees']} trees, {meta['params'].get('num_leaves')} leaves; size "
        "chosen by validation log-loss (smallest model within tolerance of the best).",
        "- Monotone constraints where the clinical direction is known (feature contract).",
        "- Platt calibration fitted on held-out predictions.",
        f"- Bands: moderate from {meta['bands']['moderate_from']:.0%}, high from "
        f"{meta['bands']['high_from']:.0%} (moderate starts near the base rate, high at about "
        "twice it).",
        f"- Contract hash `{meta['contract_hash'][:16]}`; libraries {meta['libraries']}.",
        "",
        "## Performance",
    ]
    if metrics:
        lines += [
            f"Held-out evaluation: {metrics.get('evaluation_data', 'held-out data')}.",
            "",
            "| model | AUROC (95% CI) | Brier | calibration intercept | calibration slope |",
            "|---|---|---|---|---|",
        ]
        for key, name in (("model", "this model"), ("ceiling", "ceiling: true probability"),
                          ("logistic_baseline", "logistic regression baseline")):
            if key in metrics:
                lines.append(f"| {name} " + _fmt(metrics[key]))
        settings = metrics.get("by_care_setting", {})
        if settings:
            lines += ["", "By care setting (AUROC, this model vs ceiling):", ""]
            for s, m in settings.items():
                ceiling = metrics.get("ceiling_by_care_setting", {}).get(s, {})
                lines.append(f"- {s}: {m['auroc']:.3f} vs {ceiling.get('auroc', float('nan')):.3f}"
                             f" (n={m['n']})")
        complaints = metrics.get("by_complaint", {})
        if complaints:
            lines += ["", "By complaint (AUROC, prevalence):", ""]
            lines += [f"- {c}: {m['auroc']:.3f}, {m['prevalence']:.1%} (n={m['n']})"
                      for c, m in complaints.items()]
    lines += ["", "## Limitations", *[f"- {x}" for x in LIMITATIONS], "",
              "## When to stop using it", *[f"- {x}" for x in WHEN_TO_STOP], ""]
    return "\n".join(lines)
