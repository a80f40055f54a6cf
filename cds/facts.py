"""``model_facts.json``: the facts of one model version, structured, for machines and the card.

Sections follow Model Cards (Mitchell et al. 2019: details, intended use, factors, metrics,
evaluation and training data, quantitative analyses, caveats) and carry the TRIPOD+AI items a
shipped prediction model must report (Collins et al. 2024); :data:`TRIPOD_AI` maps each item to
the section that answers it. ``MODEL_CARD.md`` is rendered from these facts
(:mod:`training.model_card`), so the two never disagree. The one source of truth for the file:
training writes it (:mod:`training.artefact`), the service reads it (``service.serving.model_facts``),
both from here, so serving never imports training.
"""

from __future__ import annotations

from typing import Any

from .features import MODEL_COLUMNS, column_feature

FACTS_FILE = "model_facts.json"
SCHEMA = "gmed-model-facts/1"

PURPOSE = ("At intake or examination, for adolescents (12-17, with their own strength norms) and "
           "adults presenting with patellofemoral pain, IT band "
           "syndrome or low back pain: the probability that hip abductor (gluteus medius) "
           "weakness drives each complaint, the factors behind it, what is missing, and the next "
           "best assessment. Decision support only: it does not diagnose and does not replace "
           "examination.")
USERS = ("physiotherapists", "sports medicine clinicians", "primary-care clinicians")
NOT_FOR = ("children under 12", "acute trauma", "post-operative patients",
           "patients with red flags (routed to referral, never scored)",
           "complaints other than patellofemoral pain, IT band syndrome and low back pain")
OUTCOME = ("`hip_driver`: hip abductor (gluteus medius) weakness is a driver of this complaint, "
           "confirmed by a clinically meaningful response (>= 2 points on the 0-10 pain scale, "
           "or 'much better' on a global rating) to a hip-focused programme at 6-8 weeks, beyond "
           "natural recovery. It is not defined by 'weakness found on assessment': the model "
           "reads that dynamometry, and a label built from its own input would be incorporation "
           "bias. In the simulated cohort a driver responds with probability ~0.85 and a "
           "non-driver 'responds' through natural recovery or non-specific effects with "
           "probability ~0.10, both falling with longer symptom duration (poorer prognosis: "
           "Collins 2013; Lankhorst 2016; Matthews 2017).")
MISSING_DATA = ("Findings not recorded are left missing, never imputed: LightGBM routes a missing "
                "value down the branch learned for it. Missingness follows the care setting "
                "(intake only; clinical exam; movement analysis), which the model sees only "
                "through which findings are present. Rows without a complaint or an outcome, and "
                "rows with a red flag, are set aside before training and counted; rows breaking "
                "the contract are quarantined with their reason.")
THRESHOLD_RATIONALE = ("Set by judgement, not chosen on data (models before 0.2.0): 'moderate' "
                       "starts near the overall base rate of the outcome in presenting "
                       "patients (15-30% by complaint): from there a hip-focused examination is "
                       "worth doing. 'high' starts at about twice the base rate, where a "
                       "hip-focused programme is a reasonable first-line option if the exam "
                       "agrees. The decision curve shows the net benefit at each threshold.")
SIMULATED_LIMITATION = ("**Trained on simulated data.** The cohort is a structural causal model "
                        "built from published priors (see CLINICAL.md); no patient outcome was "
                        "used. Retrain and validate on local outcomes before any clinical use.")
LOCAL_LIMITATION = ("Retrained on local outcomes from one source; its figures describe that "
                    "population and care pathway only. Validate again before use elsewhere.")
LIMITATIONS = (
    "Cross-sectional weakness is not proven cause: weakness was not a prospective risk factor "
    "for patellofemoral pain (Neal 2019).",
    "Strengthening raises strength without reliably changing running kinematics (Willy 2011; "
    "Kendall 2010), and experimental weakness did not change walking pelvic drop (Pohl 2015): "
    "no single finding is decisive.",
    "Inputs outside the training population (the smallest to largest value seen in training) "
    "are flagged, not extrapolated silently; the estimate is less reliable there.",
    "Explanations start at the complaint's base rate; findings not recorded are summed on one "
    "line, never given as reasons; percentage points are credited along the calibrated curve "
    "in the order listed (largest first), so a finding's points depend on where it is taken.",
    "A red flag routes to referral and no score is given at all (no probability, band, factor "
    "or next test, in any front end); red-flag questions not asked are named in a warning. "
    "The score is not a triage tool.",
)
WHEN_TO_STOP = (
    "Local calibration drifts (observed outcome rate in a band outside its stated range, or a "
    "calibration intercept beyond +/-0.2 on recent outcomes): recalibrate (`cds recalibrate`).",
    "Discrimination on local outcomes falls below the logistic baseline, or any subgroup's AUROC "
    "falls below 0.6.",
    "The feature contract or the care pathway changes (new tests, new definitions).",
)
TRIPOD_AI = {
    "title and intended use (items 1, 3)": "intended_use",
    "source of data, dates (item 5)": "data",
    "participants, setting, exclusions (item 6)": "data",
    "outcome definition (item 8)": "outcome",
    "predictors (item 9)": "predictors",
    "sample size (item 10)": "data",
    "missing data (item 11)": "missing_data",
    "model type, tuning, calibration (item 12)": "model_details",
    "performance with CIs, discrimination and calibration (items 12, 23)": "performance",
    "performance by subgroup, fairness (items 14, 23)": "performance.subgroups",
    "clinical utility (item 12g)": "clinical_utility",
    "thresholds and their rationale": "thresholds",
    "limitations (item 27)": "limitations",
    "when to stop using the model, updating (items 20, 27)": "when_to_stop",
}
UTILITY_THRESHOLDS = (0.1, 0.2, 0.3, 0.4)


def _predictors() -> list[dict[str, Any]]:
    out = []
    for c in MODEL_COLUMNS:
        f = column_feature(c)
        out.append({"column": c, "label": f.label, "group": f.group, "unit": f.unit,
                    "monotone": f.monotone, "derived_from": list(f.derived_from)})
    return out


def _thresholds(meta: dict[str, Any]) -> dict[str, Any]:
    """The bands and why: chosen by net benefit on held-out data (:mod:`training.bands`), or,
    for models written before that, the judgement they were set by."""
    selection = meta.get("band_selection") or {}
    return {"bands": meta.get("bands"),
            "rationale": selection.get("rationale") or THRESHOLD_RATIONALE,
            "method": selection.get("method"), "decisions": selection.get("decisions", [])}


def _utility(evaluation: dict[str, Any]) -> dict[str, Any]:
    curve = evaluation["decision_curve"]
    rows = []
    for t in UTILITY_THRESHOLDS:
        i = curve["thresholds"].index(t)
        rows.append({"threshold": t, "net_benefit_model": round(curve["model"][i], 4),
                     "net_benefit_examine_all": round(curve["treat_all"][i], 4)})
    return {"range": [curve["thresholds"][0], curve["thresholds"][-1]], "at": rows}


def performance_section(evaluation: dict[str, Any] | None, description: str) -> dict[str, Any]:
    """Overall and subgroup figures (curves' raw points left out: they live in the report)."""
    if evaluation is None:
        return {"evaluation_data": None, "note": "not evaluated on held-out data"}
    return {"evaluation_data": description,
            "overall": evaluation["overall"],
            "calibration": evaluation["calibration"],
            "average_precision": round(evaluation["pr"]["average_precision"], 4),
            "subgroups": evaluation["subgroups"]}


def build_facts(meta: dict[str, Any], evaluation: dict[str, Any] | None,
                evaluation_description: str = "") -> dict[str, Any]:
    """The facts of a model from its metadata and its evaluation figures (:mod:`training.curves`)."""
    simulated = "simulated" in str(meta.get("trained_on", ""))
    data = meta.get("training_data", {})
    return {
        "schema": SCHEMA,
        "model_details": {
            "id": meta["id"], "version": meta["version"], "created": meta.get("created"),
            "parent_version": meta.get("parent_version"),
            "type": "LightGBM gradient-boosted trees, monotone constraints from the contract, "
                    "Platt calibration fitted on held-out predictions",
            "trees": meta.get("trees"), "num_leaves": meta.get("params", {}).get("num_leaves"),
            "tuning": meta.get("tuning"), "seed": meta.get("seed"),
            "libraries": meta.get("libraries"), "contract_hash": meta.get("contract_hash")},
        "intended_use": {"purpose": PURPOSE, "users": list(USERS), "not_for": list(NOT_FOR)},
        "outcome": {"definition": OUTCOME},
        "data": {"trained_on": meta.get("trained_on"), "simulated": simulated,
                 "source": data.get("source") or data.get("file"), "sha256": data.get("sha256"),
                 "dates": data.get("dates"), "rows": data.get("rows"),
                 "prevalence": data.get("prevalence"), "excluded": data.get("excluded"),
                 "validation": data.get("validation"), "split": meta.get("split_sizes")},
        "predictors": _predictors(),
        "missing_data": MISSING_DATA,
        "performance": performance_section(evaluation, evaluation_description),
        "clinical_utility": _utility(evaluation) if evaluation else None,
        "thresholds": _thresholds(meta),
        "limitations": [SIMULATED_LIMITATION if simulated else LOCAL_LIMITATION, *LIMITATIONS],
        "when_to_stop": list(WHEN_TO_STOP),
        "tripod_ai": TRIPOD_AI,
    }
