"""The promotion gate: a candidate may replace production only if it is not worse beyond set
margins, on the same evaluation data, overall and in every subgroup.

Compared on point estimates from :func:`training.curves.evaluation_figures` (both models scored
on the same rows; subgroup bootstraps are paired), with margins that absorb sampling noise:

* AUROC: ``candidate >= production - auroc`` overall, ``- subgroup_auroc`` in each subgroup;
* calibration: ``|intercept|`` and ``|slope - 1|`` each at most production's plus a margin;
* every subgroup with at least ``min_subgroup_n`` rows: ``|observed - expected|`` (percentage
  points) at most production's plus ``subgroup_calibration_pp``.

``cds models promote`` runs it; ``--force`` promotes anyway and the registry records that it did
and what failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .registry import RegistryError, read_alias, set_alias

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


def check(candidate: dict[str, Any], production: dict[str, Any], margins: Margins = Margins()
          ) -> dict[str, Any]:
    """Gate one model's figures against another's; ``failures`` says what and by how much."""
    failures: list[str] = []
    c_auc, p_auc = candidate["overall"]["auroc"], production["overall"]["auroc"]
    if c_auc < p_auc - margins.auroc:
        failures.append(f"AUROC {c_auc:.3f} < production {p_auc:.3f} - {margins.auroc}")
    c_cal, p_cal = candidate["calibration"], production["calibration"]
    if abs(c_cal["intercept"]) > abs(p_cal["intercept"]) + margins.calibration_intercept:
        failures.append(f"calibration intercept {c_cal['intercept']:+.3f} vs production "
                        f"{p_cal['intercept']:+.3f} (margin {margins.calibration_intercept})")
    if abs(c_cal["slope"] - 1) > abs(p_cal["slope"] - 1) + margins.calibration_slope:
        failures.append(f"calibration slope {c_cal['slope']:.3f} vs production "
                        f"{p_cal['slope']:.3f} (margin {margins.calibration_slope})")
    for dim, groups in candidate["subgroups"].items():
        for g, c in groups.items():
            p = production["subgroups"].get(dim, {}).get(g, {})
            if not p or c.get("too_small") or p.get("too_small") \
                    or c["n"] < margins.min_subgroup_n:
                continue  # nothing to compare with (absent or too small), or too few rows
            if c["auroc"] is not None and p.get("auroc") is not None \
                    and c["auroc"] < p["auroc"] - margins.subgroup_auroc:
                failures.append(f"{dim}={g}: AUROC {c['auroc']:.3f} < production "
                                f"{p['auroc']:.3f} - {margins.subgroup_auroc}")
            c_gap = abs(c["observed_minus_expected_pp"])
            p_gap = abs(p["observed_minus_expected_pp"])
            if c_gap > p_gap + margins.subgroup_calibration_pp:
                failures.append(f"{dim}={g}: |observed - expected| {c_gap:.1f} pp vs production "
                                f"{p_gap:.1f} pp (margin {margins.subgroup_calibration_pp})")
    return {"passed": not failures, "failures": failures, "margins": asdict(margins)}


def gate_for(margins: Margins) -> Callable[[dict[str, dict[str, Any]]], dict[str, Any]]:
    """A gate over ``{candidate: figures, production: figures}`` (for :func:`training.report.evaluate`)."""
    def run(figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
        names = list(figures)
        return check(figures[names[0]], figures[names[1]], margins)
    return run


def promote(root: Path, version: str, *, alias: str = PRODUCTION, data: str | Path | None = None,
            force: bool = False, margins: Margins = Margins(), report: str | Path | None = None,
            reason: str | None = None, reps: int = 200,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Gate ``version`` against the model ``alias`` points at (on ``data``), then move the alias.

    The first promotion to an alias, or promotion to an alias other than ``production``, is not
    gated. Raises :class:`~training.registry.RegistryError` when the gate fails without ``force``
    or cannot run (no ``data``). Returns the recorded history event.
    """
    current = read_alias(root, alias)
    verdict: dict[str, Any] | None = None
    data_sha = None
    if alias == PRODUCTION and current is not None and current != version:
        if data is None and not force:
            raise RegistryError("the promotion gate needs --data (labelled evaluation data); "
                                "or use --force, which is recorded")
        if data is not None:
            from .report import evaluate

            out = report or root / "reports" / f"{version}-vs-{current}.html"
            result = evaluate(root / "gmed-driver" / version, data, out, against=current,
                              reps=reps, root=root, gate=gate_for(margins), progress=progress)
            verdict, data_sha = result["gate"], result["data"]["sha256"]
            assert verdict is not None
            if not verdict["passed"] and not force:
                raise RegistryError("gate failed; not promoted (report: " + str(out) + "):\n  "
                                    + "\n  ".join(verdict["failures"]))
    registry = set_alias(root, alias, version, gated=verdict is not None,
                         gate=verdict, forced=force, data_sha256=data_sha, reason=reason)
    event: dict[str, Any] = registry["history"][-1]
    return event
