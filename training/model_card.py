"""Render ``MODEL_CARD.md`` from a model's metadata and facts (:mod:`training.facts`).

The card is for people (clinical governance, clinicians, data scientists); ``model_facts.json``
holds the same facts for machines. Every TRIPOD+AI item listed in the facts has a section here.
"""

from __future__ import annotations

from typing import Any

from cds.facts import build_facts


def _fmt(m: dict[str, Any]) -> str:
    lo, hi = m["auroc_ci95"]
    return (f"| {m['auroc']:.3f} ({lo:.3f}-{hi:.3f}) | {m['brier']:.3f} | "
            f"{m['calibration_intercept']:+.3f} | {m['calibration_slope']:.3f} |")


def _ci(value: Any, ci: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f} ({ci[0]:.{digits}f} to {ci[1]:.{digits}f})" if ci else f"{value:.{digits}f}"


def _gap(s: dict[str, Any]) -> str:
    return _ci(s["observed_minus_expected_pp"], s["observed_minus_expected_ci95"], 1)


def _subgroups(subgroups: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| subgroup | n | prevalence | AUROC (95% CI) | observed - expected, pp (95% CI) |",
             "|---|---|---|---|---|"]
    for dim, groups in subgroups.items():
        for g, s in groups.items():
            if s.get("too_small"):
                lines.append(f"| {dim}: {g} | {s['n']} | - | too few | - |")
                continue
            lines.append(f"| {dim}: {g} | {s['n']} | {s['prevalence']:.1%} | "
                         f"{_ci(s['auroc'], s['auroc_ci95'])} | "
                         f"{_gap(s)} |")
    return lines


def _legacy_metrics(metrics: dict[str, Any]) -> list[str]:
    """The reference table: this model beside the ceiling and the logistic baseline."""
    lines = [f"Held-out evaluation: {metrics.get('evaluation_data', 'held-out data')}.", "",
             "| model | AUROC (95% CI) | Brier | calibration intercept | calibration slope |",
             "|---|---|---|---|---|"]
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
    return lines


def _decisions(decisions: list[dict[str, Any]]) -> list[str]:
    """The band boundaries' decisions as a table (net benefit per 100 patients, held-out data)."""
    if not decisions:
        return []
    lines = ["| band from | decision | threshold probability (harm:benefit) | net benefit per 100: "
             "model / examine all / none |", "|---|---|---|---|"]
    for d in decisions:
        nb = d["net_benefit_per_100"]
        lines.append(f"| {d['band']} {d['cut_off']:.0%} | {d['action']} | "
                     f"{d['threshold_probability']:.0%} ({d['harm_benefit']}) | "
                     f"{nb['model']:.1f} / {nb['examine_all']:.1f} / {nb['examine_none']:.0f} |")
    return [*lines, ""]


def render_model_card(meta: dict[str, Any], facts: dict[str, Any] | None = None) -> str:
    """The model card as Markdown.

    Long: the card's Markdown as one list of lines in the order the card reads; each
    section is a few lines of it.
    """
    facts = facts or build_facts(meta, None)
    details, data, perf = facts["model_details"], facts["data"], facts["performance"]
    if data["simulated"]:
        banner = ("> **Trained on simulated data. Not validated on patients.** This model "
                  "demonstrates the system end to end. It must be retrained on local outcomes and "
                  "validated before clinical use.")
    else:
        banner = ("> **Retrained on local outcomes** "
                  f"({data['source']}). Check the performance and subgroup figures below against "
                  "your clinical governance's criteria before clinical use.")
    lines = [
        f"# Model card: {meta['id']} {meta['version']}", "", banner, "",
        "## Intended use", facts["intended_use"]["purpose"], "",
        "Users: " + ", ".join(facts["intended_use"]["users"]) + ".", "",
        "**Not for**: " + ", ".join(facts["intended_use"]["not_for"]) + ".", "",
        "## Outcome", facts["outcome"]["definition"], "",
        "## Data",
        f"- Trained on: {data['trained_on']}.",
        f"- Source: {data['source']} (sha256 `{str(data['sha256'])[:16]}`); dates: "
        f"{data['dates'] or 'not recorded in the source'}.",
        f"- Rows learned from: {data['rows']}; outcome prevalence {data['prevalence']}; set aside: "
        f"{data['excluded']}.",
        f"- Validation: {data['validation']}." if data["validation"] else "- Validation: none recorded.",
        f"- Split: {data['split']}.",
        "",
        "## Missing data", facts["missing_data"], "",
        "## Model",
        f"- LightGBM, {meta['trees']} trees, {meta['params'].get('num_leaves')} leaves; size "
        "chosen by validation log-loss (smallest model within tolerance of the best).",
        "- Monotone constraints where the clinical direction is known, each cited in the feature "
        "contract (`docs/CLINICAL.md`); gluteal tendinopathy signs, Ober and Noble are left free.",
        "- Hip abduction strength is read as a percentage of the sex- and age-specific norm "
        "(`cds/norms.py`, ages 12-90); a finding that does not apply to a complaint or activity "
        "(a knee effusion for low back pain, running analysis for a cyclist) is set aside, in "
        "training and serving alike.",
        "- Platt calibration fitted on held-out predictions.",
    ]
    if details.get("tuning"):
        lines.append(f"- Hyperparameter search: {details['tuning']}.")
    if details.get("parent_version"):
        lines.append(f"- Recalibrated from version {details['parent_version']} (trees unchanged; "
                     "only the calibration was refitted on local outcomes).")
    lines += [
        f"- Predictors: {len(facts['predictors'])} model columns from the feature contract "
        "(see `model_facts.json`, `predictors`).",
        f"- Seed {details['seed']}; contract hash `{meta['contract_hash'][:16]}`; libraries "
        f"{meta['libraries']}.",
        "",
        "## Performance",
    ]
    if meta.get("metrics"):
        lines += _legacy_metrics(meta["metrics"])
    if perf.get("overall"):
        o, c = perf["overall"], perf["calibration"]
        lines += ["", f"Evaluation data: {perf['evaluation_data']}.", "",
                  f"- AUROC {_ci(o['auroc'], o['auroc_ci95'])}; average precision "
                  f"{perf['average_precision']:.3f}; Brier {o['brier']:.4f}.",
                  f"- Calibration intercept {c['intercept']:+.3f}, slope {c['slope']:.3f}; observed "
                  f"minus expected {_gap(o)} percentage points.", "",
                  "### By subgroup (bootstrap 95% CIs)", "",
                  *_subgroups(perf["subgroups"])]
    elif not meta.get("metrics"):
        lines.append("Not evaluated on held-out data: run `cds evaluate` before use.")
    utility = facts.get("clinical_utility")
    lines += ["", "## Clinical utility"]
    if utility:
        lines += ["Net benefit of examining the hip when the probability is at or above the "
                  "threshold, against examining everyone:", "",
                  "| threshold | this model | examine all |", "|---|---|---|"]
        lines += [f"| {r['threshold']:.0%} | {r['net_benefit_model']:.4f} | "
                  f"{r['net_benefit_examine_all']:.4f} |" for r in utility["at"]]
    else:
        lines.append("Not assessed (no evaluation data).")
    bands = facts["thresholds"]["bands"]
    lines += ["", "## Thresholds",
              f"Bands: moderate from {bands['moderate_from']:.0%}, high from {bands['high_from']:.0%}. "
              + facts["thresholds"]["rationale"], "",
              *_decisions(facts["thresholds"].get("decisions") or []),
              "## Limitations", *[f"- {x}" for x in facts["limitations"]], "",
              "## When to stop using it", *[f"- {x}" for x in facts["when_to_stop"]], "",
              "## TRIPOD+AI items", "",
              *[f"- {item}: `{section}`" for item, section in facts["tripod_ai"].items()], ""]
    return "\n".join(lines)
