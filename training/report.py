"""``cds evaluate``: one self-contained HTML report, the candidate beside production on the same data.

Sections: the data (source, hash, validation counts), the models, overall figures with 95% CIs,
ROC and precision-recall curves, calibration (deciles with intercept and slope), the decision
curve, SHAP beeswarm and dependence plots of the candidate's top features, and the subgroup table
(sex, age band, complaint, care setting) with bootstrap 95% CIs. Images are base64 PNG inside
the file; nothing is fetched when it is opened.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import ModelUnavailable
from cds.features import MODEL_COLUMNS, column_feature
from cds.model import Model, load_model

from . import plots
from .change_control import paired_differences
from .curves import evaluation_figures
from .dataset import Dataset, load, outcome_warning, require_outcomes

SHAP_ROWS = 2000
TOP_DEPENDENCE = 4
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:.92em}.warn{color:#a00}.ok{color:#070}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _ci(value: Any, ci: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if not ci or any(c != c for c in ci):  # NaN
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({ci[0]:.{digits}f} to {ci[1]:.{digits}f})"


def _gap(figures: dict[str, Any]) -> str:
    return _ci(figures["observed_minus_expected_pp"], figures["observed_minus_expected_ci95"], 1)


CEILING = "ceiling"
"""The figures' name for the simulator's own probabilities (simulated data only)."""
CEILING_COLUMN = "p_true"


def figures_for(model: Model, ds: Dataset, *, reps: int, seed: int) -> dict[str, Any]:
    p = model.probability(model.predict_raw(ds.X))
    return evaluation_figures(ds.y, p, ds.frame, reps=reps, seed=seed)


def _models_table(models: dict[str, Model]) -> str:
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{_e(m.version)}</td><td>{_e(m.trained_on)}</td>"
        f"<td>{_e(m.metadata.get('created', ''))}</td><td>{_e(m.metadata.get('trees', ''))}</td>"
        f"<td>{_e(m.metadata.get('parent_version', '') or '')}</td></tr>"
        for name, m in models.items())
    return ("<table><tr><th>role</th><th>version</th><th>trained on</th><th>created</th>"
            f"<th>trees</th><th>recalibrated from</th></tr>{rows}</table>")


def _overall_table(figures: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, f in figures.items():
        o, c = f["overall"], f["calibration"]
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{o['n']}</td><td>{o['prevalence']:.1%}</td>"
            f"<td>{_ci(o['auroc'], o['auroc_ci95'])}</td><td>{f['pr']['average_precision']:.3f}</td>"
            f"<td>{o['brier']:.4f}</td><td>{c['intercept']:+.3f}</td><td>{c['slope']:.3f}</td>"
            f"<td>{_gap(o)}</td></tr>")
    return ("<table><tr><th>model</th><th>n</th><th>prevalence</th><th>AUROC (95% CI)</th>"
            "<th>average precision</th><th>Brier</th><th>calibration intercept</th>"
            "<th>calibration slope</th><th>observed - expected, pp (95% CI)</th></tr>"
            + "".join(rows) + "</table>")


def _subgroup_table(figures: dict[str, dict[str, Any]]) -> str:
    names = list(figures)
    head = "".join(f"<th>{_e(n)}: AUROC (95% CI)</th><th>{_e(n)}: obs - exp, pp (95% CI)</th>"
                   for n in names)
    rows = []
    first = figures[names[0]]["subgroups"]
    for dim, groups in first.items():
        for g, base in groups.items():
            cells = ""
            for n in names:
                s = figures[n]["subgroups"][dim][g]
                if s.get("too_small"):
                    cells += "<td colspan=2 class=note>too few to estimate</td>"
                else:
                    cells += f"<td>{_ci(s['auroc'], s['auroc_ci95'])}</td><td>{_gap(s)}</td>"
            prevalence = f"{base['prevalence']:.1%}" if "prevalence" in base else "-"
            rows.append(f"<tr><td>{_e(dim)}: {_e(g)}</td><td>{base['n']}</td><td>{prevalence}</td>"
                        f"{cells}</tr>")
    return (f"<table><tr><th>subgroup</th><th>n</th><th>prevalence</th>{head}</tr>"
            + "".join(rows) + "</table>")


def _gate_html(gate: dict[str, Any] | None) -> str:
    if not gate:
        return ""
    verdict = ("<p class=ok>Passes the promotion gate.</p>" if gate["passed"]
               else "<p class=warn>Fails the promotion gate:</p>")
    items = "".join(f"<li>{_e(x)}</li>" for x in gate.get("checks") or gate["failures"])
    return f"<h2>Promotion gate</h2>{verdict}<ul>{items}</ul><p class=note>Margins: {_e(gate['margins'])}</p>"


def _shap_section(model: Model, ds: Dataset, seed: int) -> str:
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ds.y), min(SHAP_ROWS, len(ds.y)), replace=False))
    X = ds.X[idx]
    contributions = model.contributions(X)
    images = [f"<img alt='SHAP beeswarm' src='{plots.beeswarm(contributions, X)}'>"]
    for j in plots.top_features(contributions, TOP_DEPENDENCE):
        label = column_feature(MODEL_COLUMNS[j]).label
        images.append(f"<img alt='dependence: {_e(label)}' "
                      f"src='{plots.dependence(contributions, X, j)}'>")
    return (f"<h2>Explanations ({_e(model.version)})</h2><p class=note>Exact TreeSHAP contributions "
            f"to the raw score (log-odds) on {len(idx)} rows; dependence plots for the "
            f"{TOP_DEPENDENCE} columns with the largest mean |contribution|.</p>"
            f"<div class=grid>{''.join(images)}</div>")


def render(models: dict[str, Model], figures: dict[str, dict[str, Any]], ds: Dataset, *,
           seed: int = 0, gate: dict[str, Any] | None = None, notes: list[str] | None = None) -> str:
    """The report as one HTML string (the first model is the candidate)."""
    candidate = next(iter(models.values()))
    v = ds.validation
    validation = (f"{v.get('rows_in', len(ds.y))} rows read, {len(ds.y)} evaluated, "
                  f"{v.get('rejected', 0)} rejected, set aside: {_e(ds.excluded)}") if v else ""
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Evaluation: {_e(candidate.id)} {_e(candidate.version)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Evaluation of {_e(candidate.id)} {_e(candidate.version)}</h1>",
        f"<p class=note>Written {datetime.now(UTC).isoformat(timespec='seconds')}. Data: "
        f"{_e(ds.description)}; sha256 {_e(ds.sha256[:16])}. {validation}</p>",
        *[f"<p class=warn>{_e(n)}</p>" for n in notes or []],
        "<h2>Models</h2>", _models_table(models),
        "<h2>Overall</h2>", _overall_table(figures),
        "<p class=note>95% CIs: percentile bootstrap. Calibration intercept (slope fixed at 1) "
        "and slope on the logit scale: 0 and 1 are perfect.</p>",
        _gate_html(gate),
        "<h2>Discrimination and calibration</h2><div class=grid>",
        f"<img alt='ROC' src='{plots.roc(figures)}'>",
        f"<img alt='precision-recall' src='{plots.precision_recall(figures)}'>",
        f"<img alt='calibration' src='{plots.calibration(figures)}'>",
        "</div><h2>Clinical utility</h2><div class=grid>",
        f"<img alt='decision curve' src='{plots.decision(figures)}'>",
        "</div><p class=note>Net benefit of examining the hip (acting) when the probability is "
        "at or above the threshold, against examining everyone or no one, over 5-50%.</p>",
        _shap_section(candidate, ds, seed),
        "<h2>Subgroups</h2>", _subgroup_table(figures),
        "<p class=note>Observed minus expected: outcome rate minus mean predicted probability "
        "(percentage points); positive means the model under-predicts in that group.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def evaluate(model: str | Path, data: str | Path, out: str | Path, *,
             against: str | None = "production", reps: int = 200, seed: int = 0,
             root: Path | None = None, gate: Callable[..., dict[str, Any]] | None = None,
             progress: Callable[[str], None] | None = None,
             columns: str | Path | None = None) -> dict[str, Any]:
    """Evaluate ``model`` (and ``against``, when it resolves to another version) on ``data``;
    write the HTML report to ``out`` and return the figures."""
    say = progress or (lambda _: None)
    models = {"candidate": load_model(model, root=root)}
    notes = []
    if against:
        try:
            other = load_model(against, root=root)
            if other.path.resolve() != models["candidate"].path.resolve():
                models[against] = other
        except ModelUnavailable as e:
            notes.append(f"No comparison model: {e}")
    say(f"reading and validating {data}")
    ds = load(data, columns=columns)
    require_outcomes(ds, "an evaluation")
    warning = outcome_warning(ds)
    if warning:
        say(f"warning: {warning}")
        notes.append(warning)
    figures, probabilities = {}, {}
    for i, (name, m) in enumerate(models.items(), 1):
        say(f"evaluating {name} {m.version} on {len(ds.y)} rows ({reps} bootstrap samples; "
            f"model {i} of {len(models)})")
        probabilities[name] = m.probability(m.predict_raw(ds.X))
        figures[name] = evaluation_figures(ds.y, probabilities[name], ds.frame, reps=reps,
                                           seed=seed)
    paired = None
    if len(models) > 1:
        first, second = list(probabilities.values())[:2]
        say(f"paired bootstrap of the differences ({reps} samples)")
        paired = paired_differences(ds.y, first, second, reps=reps, seed=seed)
    verdict = gate(figures, paired) if gate is not None and len(figures) > 1 else None
    if CEILING_COLUMN in ds.frame.columns:  # simulated data: the best achievable, beside
        p_true = ds.frame[CEILING_COLUMN].to_numpy(dtype=float)
        if np.isfinite(p_true).all():
            say(f"evaluating the ceiling ({CEILING_COLUMN}: the simulator's own probabilities)")
            figures[CEILING] = evaluation_figures(ds.y, p_true, ds.frame, reps=reps, seed=seed)
    say("drawing the report")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(render(models, figures, ds, seed=seed, gate=verdict, notes=notes),
                         encoding="utf-8")
    return {"figures": figures, "gate": verdict, "data": ds.provenance, "paired": paired,
            "versions": {name: m.version for name, m in models.items()}}
