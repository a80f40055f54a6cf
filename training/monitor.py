"""``cds monitor``: is the model still seeing the patients it was built for, and still right?

Over the service's store (every assessment, with outcomes where recorded) or a file, by month
(``recorded_at``; one period when there is no date), the model named is run on the stored
inputs and these figures are computed (by :mod:`cds.monitoring`, which the service's
``/metrics`` gauges share):

* **input drift**, per model column: the population stability index (PSI) of the month against
  a reference (``--reference`` if given; else the training distribution shipped with the
  model, ``reference.json``; else the first month), over the
  reference's deciles for numbers and over the values for categories and yes/no, "not
  recorded" being a bin of its own. ``PSI = sum((a - e) ln(a / e))`` with shares floored at
  1e-4. Bounds: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major shift (alarm)
  (Siddiqi, Credit Risk Scorecards, Wiley 2006; Yurdakul & Naranjo 2020, "Statistical properties
  of the population stability index", J Risk Model Validation 14(4));
* **out-of-population rate**: the share of rows with a value outside the training population
  (the model's ``metadata["population"]``, as :func:`cds.safety.population_warnings` reads it);
* **prediction distribution**: mean and quartiles of the calibrated probability;
* **observed vs expected**, where outcomes are recorded: the outcome rate with its Wilson 95%
  CI, beside the mean predicted probability; an alarm when the expected rate lies outside the
  observed rate's CI and differs from it by more than :data:`CALIBRATION_ALARM_PP` points.

Rows that break a rule or carry a red flag are counted and not scored (as in ``cds score``).

**Shadow mode** (over a store; :mod:`service.serving.shadow`): where a ``shadow`` model scored live
requests beside production, the two are compared on the same complaints (:func:`compare_shadow`,
per shadow version): agreement (the share of complaints given the same band, each model's own
bands), the mean and mean absolute difference of probability (shadow minus production), and,
where outcomes have arrived, the AUROC of each on those complaints.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cds.errors import UserError
from cds.features import MODEL_COLUMNS, RED_FLAGS
from cds.intake import rows_from_frame
from cds.model import load_model
from cds.monitoring import CALIBRATION_ALARM_PP as CALIBRATION_ALARM_PP
from cds.monitoring import PSI_ALARM as PSI_ALARM
from cds.monitoring import PSI_MODERATE as PSI_MODERATE
from cds.monitoring import figures, read_reference, reference_distribution
from cds.monitoring import psi as psi
from cds.monitoring import wilson as wilson

from .schema import COMPLAINT, LABEL, canonical
from .sources import read_source
from .tidy import tidy
from .validation import row_reasons


def _rows(spec: str | Path, columns: str | Path | None) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Scorable canonical rows, their model matrix, and how many rows were not scorable."""
    from .columns import load_mapping
    from .sources import is_database_url, read_store

    text = str(spec)
    source = read_store(text, unlabelled=True) if is_database_url(text) else read_source(spec)
    frame = tidy(source.frame, load_mapping(columns) if columns else None, dedupe=False).frame
    frame = frame.reset_index(drop=True)
    reason, _ = row_reasons(frame, require_label=False)
    clean = canonical(frame)
    ok = (reason == "").to_numpy().copy()
    if COMPLAINT in clean.columns:
        ok &= clean[COMPLAINT].notna().to_numpy()
    for f in RED_FLAGS:
        if f.name in clean.columns:
            ok &= ~(clean[f.name].fillna(0).to_numpy(dtype=float) > 0)
    kept = clean.loc[ok].reset_index(drop=True)
    if kept.empty:
        raise UserError(f"{spec}: no row can be scored ({len(frame)} read)")
    return kept, rows_from_frame(kept), int((~ok).sum())


def _periods(frame: pd.DataFrame) -> np.ndarray:
    if "recorded_at" not in frame.columns or frame["recorded_at"].isna().all():
        return np.full(len(frame), "all")
    dates = pd.to_datetime(frame["recorded_at"].astype("string"), errors="coerce", utc=True)
    return dates.dt.strftime("%Y-%m").fillna("undated").to_numpy()


def monitor(data: str | Path, *, model: str | Path = "production", root: Path | None = None,
            reference: str | Path | None = None, columns: str | Path | None = None,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The figures of the module docstring, by month."""
    say = progress or (lambda _: None)
    loaded = load_model(model, root=root)
    say(f"reading {data}")
    frame, X, skipped = _rows(data, columns)
    periods = _periods(frame)
    say(f"scoring {len(X)} rows with {loaded.version}")
    p = loaded.probability(loaded.predict_raw(X))
    population = loaded.metadata.get("population") or {}
    shipped = read_reference(loaded.path)
    if reference is not None:
        say(f"reading the reference {reference}")
        _, X_ref, _ = _rows(reference, columns)
        ref, ref_name = reference_distribution(X_ref, str(reference)), str(reference)
    elif shipped is not None:
        ref = shipped
        ref_name = f"the training data shipped with the model ({shipped.get('source') or 'reference.json'})"
    else:
        first = sorted(set(periods))[0]
        ref = reference_distribution(X[periods == first])
        ref_name = f"the first period ({first})"
    y = frame[LABEL].to_numpy(dtype=float) if LABEL in frame.columns else np.full(len(X), np.nan)
    months = []
    for i, period in enumerate(sorted(set(periods)), 1):
        say(f"  month {i} of {len(set(periods))}: {period}")
        m = periods == period
        months.append({"period": period,
                       **figures(X[m], p[m], y[m], reference=ref, population=population)})
    from .sources import is_database_url

    shadow = compare_shadow(str(data), loaded, root) if is_database_url(str(data)) else []
    return {"model": loaded.version, "data": str(data), "reference": ref_name,
            "rows_scored": len(X), "rows_not_scored": skipped, "months": months,
            "shadow": shadow,
            "bounds": {"psi_moderate": PSI_MODERATE, "psi_alarm": PSI_ALARM,
                       "calibration_alarm_pp": CALIBRATION_ALARM_PP}}


def _shadow_pairs(url: str) -> list[dict[str, Any]]:
    """Each shadow-scored complaint: production's and the shadow's probability and band, the
    shadow's version, and the outcome where recorded (the latest per complaint)."""
    import json

    from sqlalchemy import MetaData, create_engine, inspect, select

    from cds.store_schema import build

    engine = create_engine(url)
    try:
        tables = build(MetaData())  # the service's own declaration of its tables
        a, o, sh = (tables[n] for n in ("assessments", "outcomes", "shadow_assessments"))
        if not inspect(engine).has_table(sh.name):  # a store older than shadow mode
            return []
        with engine.connect() as conn:
            pairs = conn.execute(select(a.c.id, a.c.result, sh.c.model_version, sh.c.scores)
                                 .join(sh, sh.c.assessment_id == a.c.id)).all()
            labels = conn.execute(select(o.c.assessment_id, o.c.complaint, o.c.hip_driver)
                                  .order_by(o.c.recorded_at, o.c.id)).all()
    finally:
        engine.dispose()
    outcome = {(aid, c): float(bool(h)) for aid, c, h in labels}
    out = []
    for aid, result, version, scores in pairs:
        result = json.loads(result) if isinstance(result, str) else result
        scores = json.loads(scores) if isinstance(scores, str) else scores
        production = {r["complaint"]: r for r in result.get("results", [])}
        for s in scores:
            shown = production.get(s["complaint"])
            if shown is not None:
                out.append({"version": version, "production": float(shown["probability"]),
                            "production_band": shown["band"], "shadow": float(s["probability"]),
                            "outcome": outcome.get((aid, s["complaint"]), float("nan"))})
    return out


def compare_shadow(url: str, production: Any, root: Path | None = None) -> list[dict[str, Any]]:
    """Production against each shadow version on the complaints both scored (module docstring)."""
    from cds.errors import CdsError

    from .evaluate import auroc

    pairs = _shadow_pairs(url)
    out = []
    for version in sorted({p["version"] for p in pairs}):
        mine = [p for p in pairs if p["version"] == version]
        try:
            bands = load_model(version, root=root).band
        except CdsError:  # the version is gone: judge its bands by production's thresholds
            bands = production.band
        prod = np.array([p["production"] for p in mine])
        shad = np.array([p["shadow"] for p in mine])
        y = np.array([p["outcome"] for p in mine])
        agree = np.mean([bands(float(q)) == p["production_band"] for q, p in zip(shad, mine,
                                                                                  strict=True)])
        labelled = ~np.isnan(y)
        both = labelled.any() and 0 < y[labelled].sum() < labelled.sum()
        out.append({"version": version, "complaints": len(mine),
                    "band_agreement": round(float(agree), 4),
                    "mean_difference": round(float((shad - prod).mean()), 4),
                    "mean_abs_difference": round(float(np.abs(shad - prod).mean()), 4),
                    "outcomes": int(labelled.sum()),
                    "auroc_production": round(auroc(y[labelled], prod[labelled]), 4) if both else None,
                    "auroc_shadow": round(auroc(y[labelled], shad[labelled]), 4) if both else None})
    return out


def shadow_lines(result: dict[str, Any]) -> list[str]:
    """The shadow comparison in words (empty when no shadow model scored anything)."""
    out = []
    for s in result.get("shadow", []):
        aurocs = (f"AUROC on {s['outcomes']} outcomes: production {s['auroc_production']:.3f}, "
                  f"shadow {s['auroc_shadow']:.3f}" if s["auroc_production"] is not None else
                  f"{s['outcomes']} outcomes: no AUROC yet (both classes needed)")
        out.append(f"  shadow {s['version']} vs {result['model']} on {s['complaints']} live "
                   f"complaints: same band {s['band_agreement']:.1%}, mean difference "
                   f"{s['mean_difference']:+.3f} (mean |difference| "
                   f"{s['mean_abs_difference']:.3f}); {aurocs}")
    return out


def lines(result: dict[str, Any]) -> list[str]:
    """The figures in words, one line per month (``cds monitor``'s output)."""
    out = [f"{result['model']} on {result['data']}: {result['rows_scored']} rows scored, "
           f"{result['rows_not_scored']} not (rule broken, red flag or no complaint); "
           f"drift against {result['reference']}"]
    for m in result["months"]:
        worst = max(m["psi"].items(), key=lambda kv: kv[1])
        oe = ("no outcomes" if not m["outcomes"] else
              f"observed {m['observed']:.1%} ({m['observed_ci95'][0]:.1%}-"
              f"{m['observed_ci95'][1]:.1%}, n={m['outcomes']}) vs expected {m['expected']:.1%}"
              + ("  ALARM: calibration drift" if m["calibration_alarm"] else ""))
        out.append(f"  {m['period']}: {m['rows']} rows, mean prediction {m['prediction']['mean']:.1%}, "
                   f"out of population {m['out_of_population_rate']:.1%}, largest PSI "
                   f"{worst[0]} {worst[1]:.3f}"
                   + (f"  ALARM: PSI > {PSI_ALARM} in {', '.join(m['psi_alarms'])}"
                      if m["psi_alarms"] else "") + f"; {oe}")
    return out + shadow_lines(result)


def render(result: dict[str, Any]) -> str:
    """A self-contained HTML report: the monthly table, PSI by column and month, and a plot."""
    import matplotlib.pyplot as plt  # the backend (Agg) is chosen when training.plots is imported

    from . import plots

    e = html.escape
    months = result["months"]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    x = np.arange(len(months))
    ax.plot(x, [m["prediction"]["mean"] for m in months], "o-", label="mean prediction")
    obs = [(i, m) for i, m in enumerate(months) if m["outcomes"]]
    if obs:
        ax.errorbar([i for i, _ in obs], [m["observed"] for _, m in obs],
                    yerr=np.array([[m["observed"] - m["observed_ci95"][0],
                                    m["observed_ci95"][1] - m["observed"]] for _, m in obs]).T,
                    fmt="s", capsize=3, label="observed (95% CI)")
        ax.plot([i for i, _ in obs], [m["expected"] for _, m in obs], "x", label="expected")
    ax.set_xticks(x, [m["period"] for m in months], rotation=45)
    ax.set_ylabel("probability / rate")
    ax.legend(fontsize=8)
    image = plots.data_uri(fig)
    head = "".join(f"<th>{e(m['period'])}</th>" for m in months)
    def cell(value: float) -> str:
        kind = "warn" if value > PSI_ALARM else "note" if value > PSI_MODERATE else "ok"
        return f"<td class={kind}>{value:.3f}</td>"

    psi_rows = "".join(f"<tr><td>{e(c)}</td>" + "".join(cell(m["psi"][c]) for m in months)
                       + "</tr>" for c in MODEL_COLUMNS)
    table = "".join(
        f"<tr><td>{e(line)}</td></tr>" for line in lines(result)[1:len(months) + 1])
    shadow = "".join(f"<li>{e(line.strip())}</li>" for line in shadow_lines(result))
    shadow = f"<h2>Shadow model on live traffic</h2><ul>{shadow}</ul>" if shadow else ""
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Monitoring "
            f"{e(result['model'])}</title><style>body{{font:14px system-ui;margin:2em auto;"
            f"max-width:1100px}}td,th{{border:1px solid #ddd;padding:2px 6px}}.warn{{color:#a00;"
            f"font-weight:bold}}.note{{color:#a60}}.ok{{color:#070}}table{{border-collapse:"
            f"collapse}}</style></head><body><h1>Monitoring {e(result['model'])}</h1>"
            f"<p>Written {datetime.now(UTC).isoformat(timespec='seconds')}. {e(lines(result)[0])}. "
            f"Bounds: PSI {PSI_MODERATE} (moderate), {PSI_ALARM} (alarm); calibration alarm when "
            f"the expected rate is outside the observed 95% CI and {CALIBRATION_ALARM_PP} points "
            f"away.</p><h2>By month</h2><table>{table}</table><img alt='prediction and observed "
            f"by month' src='{image}'><h2>PSI by column</h2><table><tr><th>column</th>{head}</tr>"
            f"{psi_rows}</table>{shadow}</body></html>")
