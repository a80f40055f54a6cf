"""Figures of the evaluation report, drawn with matplotlib (Agg) and embedded as base64 PNG.

Each function takes the plain figures of :mod:`training.curves` for one or more models (name ->
figures) and returns a ``data:`` URI, so the report is one self-contained HTML file. SHAP plots
use the model's own exact contributions (``Model.contributions``); shap only draws them.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, ever: reports are written by servers and CI

import matplotlib.pyplot as plt
import numpy as np

from cds.features import MODEL_COLUMNS, column_feature

COLOURS = ("#1f5fa8", "#c2571a", "#2e8b57", "#7a3ea1")
DPI = 96


def data_uri(fig: Any) -> str:
    """A matplotlib figure as a ``data:image/png;base64`` URI (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def roc(figures: dict[str, dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for (name, f), colour in zip(figures.items(), COLOURS, strict=False):
        o = f["overall"]
        ax.plot(f["roc"]["fpr"], f["roc"]["tpr"], color=colour,
                label=f"{name}: AUROC {o['auroc']:.3f} ({o['auroc_ci95'][0]:.3f}-{o['auroc_ci95'][1]:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC curve")
    ax.legend(fontsize=7, loc="lower right")
    return data_uri(fig)


def precision_recall(figures: dict[str, dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    prevalence = next(iter(figures.values()))["overall"]["prevalence"]
    for (name, f), colour in zip(figures.items(), COLOURS, strict=False):
        ax.plot(f["pr"]["recall"], f["pr"]["precision"], color=colour,
                label=f"{name}: AP {f['pr']['average_precision']:.3f}")
    ax.axhline(prevalence, ls=":", color="grey", lw=1, label=f"prevalence {prevalence:.1%}")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall",
           ylim=(0, 1))
    ax.legend(fontsize=7, loc="upper right")
    return data_uri(fig)


def calibration(figures: dict[str, dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    top = 0.0
    for (name, f), colour in zip(figures.items(), COLOURS, strict=False):
        c = f["calibration"]
        x = np.array([b["predicted"] for b in c["bins"]])
        y = np.array([b["observed"] for b in c["bins"]])
        err = np.array([[b["observed"] - b["lo"] for b in c["bins"]],
                        [b["hi"] - b["observed"] for b in c["bins"]]])
        ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=2, color=colour,
                    label=f"{name}: intercept {c['intercept']:+.2f}, slope {c['slope']:.2f}")
        top = max(top, float(x.max()), float(max(b["hi"] for b in c["bins"])))
    top = min(1.0, top * 1.1)
    ax.plot([0, top], [0, top], ls=":", color="grey", lw=1, label="perfect calibration")
    ax.set(xlabel="predicted probability (decile mean)", ylabel="observed rate (95% CI)",
           title="Calibration", xlim=(0, top), ylim=(0, top))
    ax.legend(fontsize=7, loc="upper left")
    return data_uri(fig)


def decision(figures: dict[str, dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    first = next(iter(figures.values()))["decision_curve"]
    t = np.array(first["thresholds"])
    for (name, f), colour in zip(figures.items(), COLOURS, strict=False):
        ax.plot(t, f["decision_curve"]["model"], color=colour, label=name)
    ax.plot(t, first["treat_all"], color="black", lw=1, ls="--", label="examine all")
    ax.plot(t, first["treat_none"], color="grey", lw=1, label="examine none")
    high = max(max(f["decision_curve"]["model"]) for f in figures.values())
    ax.set(xlabel="threshold probability", ylabel="net benefit", title="Decision curve",
           ylim=(-0.02, max(0.05, high * 1.15)))
    ax.legend(fontsize=7)
    return data_uri(fig)


def _explanation(contributions: np.ndarray, X: np.ndarray) -> Any:
    import shap

    return shap.Explanation(values=contributions[:, :-1], base_values=contributions[:, -1],
                            data=X, feature_names=list(MODEL_COLUMNS))


def top_features(contributions: np.ndarray, k: int) -> list[int]:
    """Model columns with the largest mean |contribution|, most important first."""
    importance = np.abs(contributions[:, :-1]).mean(axis=0)
    return [int(j) for j in np.argsort(-importance)[:k]]


def beeswarm(contributions: np.ndarray, X: np.ndarray, *, max_display: int = 12) -> str:
    """SHAP summary (beeswarm) of the raw-score contributions."""
    import shap

    shap.plots.beeswarm(_explanation(contributions, X), max_display=max_display, show=False,
                        plot_size=(7.5, 5.5), s=8)
    fig = plt.gcf()
    fig.axes[0].set_xlabel("contribution to the raw score (log-odds)")
    return data_uri(fig)


def dependence(contributions: np.ndarray, X: np.ndarray, column: int) -> str:
    """SHAP dependence plot for one model column (the value against its contribution)."""
    import shap

    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    explanation = _explanation(contributions, X)
    shap.plots.scatter(explanation[:, column], ax=ax, show=False, dot_size=6, alpha=0.5,
                       ylabel="contribution (log-odds)")
    f = column_feature(MODEL_COLUMNS[column])
    if f.kind == "category":
        ax.set_xticks(range(len(f.allowed)), list(f.allowed))
    return data_uri(fig)
