"""The promotion gate: a candidate may replace production only if it is not worse beyond set
margins, on the same evaluation data, overall and in every subgroup.

Both models are scored on the same rows (:func:`training.report.evaluate`) and compared:

* AUROC: non-inferiority on a paired bootstrap (the same resamples for both models): the lower
  95% bound of candidate - production at least ``-auroc``; subgroups: the point estimate at
  least production's ``- subgroup_auroc``;
* calibration: ``|intercept|`` and ``|slope - 1|`` each at most production's plus a margin
  (the paired difference in |observed - expected| is reported beside);
* every subgroup with at least ``min_subgroup_n`` rows: ``|observed - expected|`` (percentage
  points) at most production's plus ``subgroup_calibration_pp``.

The margins are the change control plan's (``models/change_control.json``,
:mod:`training.change_control`); every rule applied is printed and recorded with the report's
path, the data and the plan's version. ``cds models promote`` runs it; ``--force`` promotes
anyway and the registry records that it did and what failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cds.registry import check_name

from .change_control import load_plan, plan_margins
from .registry import GateFailed, RegistryError, read_alias, set_alias

PRODUCTION = "production"


@dataclass(frozen=True)
class Margins:
    """How much worse than production a candidate may be (defaults: see module docstring)."""

    auroc: float = 0.02
    calibration_intercept: float = 0.10
    calibration_slope: float = 0.15
    subgroup_auroc: float = 0.05
    subgroup_calibration_pp: float = 5.0
    min_subgroup_n: int = 100


def check(candidate: dict[str, Any], production: dict[str, Any], margins: Margins = Margins(),
          paired: dict[str, Any] | None = None) -> dict[str, Any]:
    """Gate one model's figures against another's on the same data.

    ``failures`` says what failed and by how much; ``checks`` lists every rule applied, passed
    or failed, in words. With ``paired`` (:func:`training.change_control.paired_differences`)
    the AUROC rule is non-inferiority on the paired bootstrap: the lower 95% bound of
    candidate - production must be at least ``-margins.auroc``; without it, the point estimates.
    """
    failures: list[str] = []
    checks: list[str] = []

    def rule(ok: bool, text: str) -> None:
        checks.append(("pass: " if ok else "FAIL: ") + text)
        if not ok:
            failures.append(text)

    c_auc, p_auc = candidate["overall"]["auroc"], production["overall"]["auroc"]
    if paired and paired["auroc_difference_ci95"][0] == paired["auroc_difference_ci95"][0]:
        lo, hi = paired["auroc_difference_ci95"]
        rule(lo >= -margins.auroc,
             f"AUROC difference {paired['auroc_difference']:+.3f} (paired 95% CI {lo:+.3f} to "
             f"{hi:+.3f}; candidate {c_auc:.3f}, production {p_auc:.3f}): lower bound "
             f"{'>=' if lo >= -margins.auroc else '<'} -{margins.auroc}")
    else:
        rule(c_auc >= p_auc - margins.auroc,
             f"AUROC {c_auc:.3f} {'>=' if c_auc >= p_auc - margins.auroc else '<'} production "
             f"{p_auc:.3f} - {margins.auroc}")
    c_cal, p_cal = candidate["calibration"], production["calibration"]
    rule(abs(c_cal["intercept"]) <= abs(p_cal["intercept"]) + margins.calibration_intercept,
         f"calibration intercept {c_cal['intercept']:+.3f} vs production "
         f"{p_cal['intercept']:+.3f} (|intercept| margin {margins.calibration_intercept})")
    rule(abs(c_cal["slope"] - 1) <= abs(p_cal["slope"] - 1) + margins.calibration_slope,
         f"calibration slope {c_cal['slope']:.3f} vs production "
         f"{p_cal['slope']:.3f} (|slope - 1| margin {margins.calibration_slope})")
    if paired:
        lo, hi = paired["calibration_gap_difference_ci95"]
        checks.append(f"info: |observed - expected| difference "
                      f"{paired['calibration_gap_difference_pp']:+.2f} pp (paired 95% CI "
                      f"{lo:+.2f} to {hi:+.2f})")
    for dim, groups in candidate["subgroups"].items():
        for g, c in groups.items():
            p = production["subgroups"].get(dim, {}).get(g, {})
            if c.get("too_small") or p.get("too_small") or c["n"] < margins.min_subgroup_n:
                continue
            if c["auroc"] is not None and p.get("auroc") is not None:
                ok = c["auroc"] >= p["auroc"] - margins.subgroup_auroc
                rule(ok, f"{dim}={g}: AUROC {c['auroc']:.3f} {'>=' if ok else '<'} production "
                         f"{p['auroc']:.3f} - {margins.subgroup_auroc}")
            c_gap = abs(c["observed_minus_expected_pp"])
            p_gap = abs(p["observed_minus_expected_pp"])
            rule(c_gap <= p_gap + margins.subgroup_calibration_pp,
                 f"{dim}={g}: |observed - expected| {c_gap:.1f} pp vs production "
                 f"{p_gap:.1f} pp (margin {margins.subgroup_calibration_pp})")
    return {"passed": not failures, "failures": failures, "checks": checks,
            "margins": asdict(margins), "paired": paired}


def gate_for(margins: Margins) -> Callable[..., dict[str, Any]]:
    """A gate over ``{candidate: figures, production: figures}`` and their paired differences
    (for :func:`training.report.evaluate`)."""
    def run(figures: dict[str, dict[str, Any]], paired: dict[str, Any] | None = None
            ) -> dict[str, Any]:
        names = list(figures)
        return check(figures[names[0]], figures[names[1]], margins, paired)
    return run


def promote(root: Path, version: str, *, alias: str = PRODUCTION, data: str | Path | None = None,
            force: bool = False, margins: Margins | None = None,
            report: str | Path | None = None, reason: str | None = None, reps: int = 200,
            progress: Callable[[str], None] | None = None,
            overrides: dict[str, float] | None = None,
            columns: str | Path | None = None) -> dict[str, Any]:
    """Gate ``version`` against the model ``alias`` points at (on ``data``), then move the alias.

    Margins come from the change control plan in ``root`` (:mod:`training.change_control`),
    else :class:`Margins`' defaults; ``margins`` replaces them, ``overrides`` changes single
    ones (recorded as deviations from the plan). The first promotion to an alias, or promotion
    to an alias other than ``production``, is not gated. Raises
    :class:`~training.registry.RegistryError` when the gate cannot run (no ``data``) and
    :class:`~training.registry.GateFailed` when it fails, without ``force``. Returns the
    recorded history event (with the gate's checks, the report's path, the data and the plan).
    """
    check_name(version, "version")
    current = read_alias(root, alias)
    plan = load_plan(root)
    chosen = margins or plan_margins(plan, Margins)
    deviations = {k: v for k, v in (overrides or {}).items() if getattr(chosen, k) != v}
    chosen = replace(chosen, **deviations)
    verdict: dict[str, Any] | None = None
    details: dict[str, Any] = {}
    if alias == PRODUCTION and current is not None and current != version:
        if data is None and not force:
            raise RegistryError("the promotion gate needs --data (labelled evaluation data); "
                                "or use --force, which is recorded")
        if data is not None:
            from .report import evaluate

            out = Path(report or root / "reports" / f"{version}-vs-{current}.html")
            result = evaluate(root / "gmed-driver" / version, data, out, against=current,
                              reps=reps, root=root, gate=gate_for(chosen), progress=progress,
                              columns=columns)
            verdict = result["gate"]
            assert verdict is not None
            details = {"data_sha256": result["data"]["sha256"],
                       "gate_data": result["data"]["source"], "report": str(out),
                       "gate_data_note": _data_note(root / "gmed-driver" / version,
                                                    result["data"]["sha256"])}
            if not verdict["passed"] and not force:
                raise GateFailed("gate failed; not promoted (report: " + str(out) + "):\n  "
                                 + "\n  ".join(verdict["checks"]))
    registry = set_alias(root, alias, version, gated=verdict is not None,
                         gate=verdict, forced=force, reason=reason,
                         plan=({k: plan[k] for k in ("version", "sha256", "path")} if plan
                               else "none: default margins"),
                         deviations=deviations or None, **details)
    event: dict[str, Any] = registry["history"][-1]
    return event


def _data_note(candidate: Path, data_sha256: str) -> str | None:
    """Whether the gate data are the data the candidate was recalibrated on (figures apparent)."""
    try:
        meta = json.loads((candidate / "metadata.json").read_text())
    except (OSError, ValueError):
        return None
    recal = (meta.get("recalibration") or {}).get("data") or {}
    if not recal:
        return None
    if recal.get("sha256") == data_sha256:
        return ("gate data are the data this version was recalibrated on: its figures are "
                "apparent (optimistic); held-out outcomes are the honest check")
    return "gate data are not the recalibration data (held out)"
