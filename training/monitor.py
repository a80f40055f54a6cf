"""``cds monitor``: is the model still seeing the patients it was built for, and still right?

Over the service's store (every assessment, with outcomes where recorded) or a file, by month
(``recorded_at``; one period when there is no date), the model named is run on the stored
inputs and these figures are computed:

* **input drift**, per model column: the population stability index (PSI) of the month against
  a reference (``--reference``: the training data, best; else the first month), over the
  reference's deciles for numbers and over the values for categories and yes/no, "not
  recorded" being a bin of its own. ``PSI = sum((a - e) ln(a / e))`` with shares floored at
  1e-4. Bounds: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25 a major shift (alarm)
  (Siddiqi, Credit Risk Scorecards, Wiley 2006; Yurdakul & Naranjo 2020, "Statistical properties
  of the population stability index", J Risk Model Validation 14(4));
* **out-of-population rate**: the share of rows with a value outside the training population
  (the 0.5th-99.5th percentiles in the model's metadata, :func:`cds.safety.population_warnings`);
* **prediction distribution**: mean and quartiles of the calibrated probability;
* **observed vs expected**, where outcomes are recorded: the outcome rate with its Wilson 95%
  CI, beside the mean predicted probability; an alarm when the expected rate lies outside the
  observed rate's CI and differs from it by more than :data:`CALIBRATION_ALARM_PP` points.

Rows that break a rule or carry a red flag are counted and not scored (as in ``cds score``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cds.errors import UserError
from cds.features import MODEL_COLUMNS, RED_FLAGS, column_feature
from cds.intake import rows_from_frame
from cds.model import load_model
from cds.safety import population_warnings

from .schema import COMPLAINT, LABEL, canonical
from .sources import read_source
from .tidy import tidy
from .validation import row_reasons

PSI_MODERATE, PSI_ALARM = 0.1, 0.25
CALIBRATION_ALARM_PP = 5.0
_FLOOR = 1e-4


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion ``k / n``."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def _bins(reference: np.ndarray, categorical: bool) -> np.ndarray | None:
    if categorical:
        return None
    values = reference[~np.isnan(reference)]
    if values.size == 0:
        return None
    edges = np.unique(np.percentile(values, np.linspace(10, 90, 9)))
    return edges


def _shares(values: np.ndarray, edges: np.ndarray | None, categories: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    if edges is None:
        counts = [int(missing.sum())] + [int((values == c).sum()) for c in categories]
    else:
        binned = np.digitize(values[~missing], edges)
        counts = [int(missing.sum())] + [int((binned == b).sum()) for b in range(len(edges) + 1)]
    total = max(sum(counts), 1)
    return np.maximum(np.asarray(counts, float) / total, _FLOOR)


def psi(reference: np.ndarray, current: np.ndarray, *, categorical: bool) -> float:
    """Population stability index of one column (module docstring)."""
    edges = _bins(reference, categorical)
    categories = np.unique(np.concatenate([reference, current]))
    categories = categories[~np.isnan(categories)]
    e = _shares(reference, edges, categories)
    a = _shares(current, edges, categories)
    return float(np.sum((a - e) * np.log(a / e)))


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
    outside = np.array([bool(population_warnings(row, population)) for row in X])
    if reference is not None:
        say(f"reading the reference {reference}")
        _, X_ref, _ = _rows(reference, columns)
        ref_name = str(reference)
    else:
        first = sorted(set(periods))[0]
        X_ref, ref_name = X[periods == first], f"the first period ({first})"
    y = frame[LABEL].to_numpy(dtype=float) if LABEL in frame.columns else np.full(len(X), np.nan)
    months = []
    for i, period in enumerate(sorted(set(periods)), 1):
        say(f"  month {i} of {len(set(periods))}: {period}")
        m = periods == period
        drift = {c: round(psi(X_ref[:, j], X[m, j],
                              categorical=column_feature(c).kind in ("category", "boolean")), 4)
                 for j, c in enumerate(MODEL_COLUMNS)}
        labelled = m & ~np.isnan(y)
        k, n = int(y[labelled].sum()), int(labelled.sum())
        lo, hi = wilson(k, n)
        expected = float(p[labelled].mean()) if n else float("nan")
        observed = k / n if n else float("nan")
        calibration_alarm = bool(n and not lo <= expected <= hi
                                 and abs(observed - expected) * 100 > CALIBRATION_ALARM_PP)
        months.append({
            "period": period, "rows": int(m.sum()),
            "out_of_population_rate": round(float(outside[m].mean()), 4),
            "prediction": {"mean": round(float(p[m].mean()), 4),
                           "quartiles": [round(float(q), 4) for q in np.percentile(p[m], [25, 50, 75])]},
            "psi": drift, "psi_alarms": sorted(c for c, v in drift.items() if v > PSI_ALARM),
            "outcomes": n, "observed": None if not n else round(observed, 4),
            "observed_ci95": None if not n else [round(lo, 4), round(hi, 4)],
            "expected": None if not n else round(expected, 4),
            "calibration_alarm": calibration_alarm})
    return {"model": loaded.version, "data": str(data), "reference": ref_name,
            "rows_scored": len(X), "rows_not_scored": skipped, "months": months,
            "bounds": {"psi_moderate": PSI_MODERATE, "psi_alarm": PSI_ALARM,
                       "calibration_alarm_pp": CALIBRATION_ALARM_PP}}


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
    return out


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
        f"<tr><td>{e(line)}</td></tr>" for line in lines(result)[1:])
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
            f"{psi_rows}</table></body></html>")
