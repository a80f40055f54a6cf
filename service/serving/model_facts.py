"""The model facts panel's content (``/ui/model`` and beside every assessment): what the model
is, who it was trained on, how well it did, and what not to use it for.

Built from the verified artefact of the version an assessment names (the loaded model's
metadata when it is that version). The texts (intended use, outcome, limitations, when not to
use) come from :mod:`cds.facts`, the one place the model card is written from too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cds.errors import CdsError, ModelUnavailable
from cds.explain import with_unit
from cds.facts import FACTS_FILE, build_facts
from cds.features import ROWS, column_feature
from cds.model import resolve, verify_manifest

from ..ui.svg_eval import calibration_plot, decision_curve
from .model_host import get_model

SETTING_TEXT = {"intake": "Intake answers only", "exam": "With clinical examination",
                "movement": "With movement analysis"}


def short_unit(text: str, unit: str | None) -> str:
    """``2-16°``, ``0.9-2.0 N·m/kg``; a score's ``/10`` is left to the box beside the input."""
    return with_unit(text, unit) if unit and not unit.startswith("/") else text


_metadata_cache: dict[tuple[str, str], tuple[dict[str, Any], Path]] = {}


def _model_source(info: Mapping[str, str]) -> tuple[dict[str, Any], Path] | None:
    """Metadata and directory of the model version that made an assessment: the served model,
    or that version's verified artefact on disk; ``None`` if neither is available."""
    key = (str(info.get("id")), str(info.get("version")))
    try:
        model = get_model()
        if (model.id, model.version) == key:
            return model.metadata, model.path
    except ModelUnavailable:
        pass
    if key not in _metadata_cache:
        try:
            directory = resolve(key[1])
            verify_manifest(directory)
            meta = json.loads((directory / "metadata.json").read_text())
        except (CdsError, OSError, ValueError):
            return None
        if (meta.get("id"), meta.get("version")) != key:
            return None
        _metadata_cache[key] = (meta, directory)
    return _metadata_cache[key]


def current_model_info() -> dict[str, str] | None:
    try:
        model = get_model()
    except ModelUnavailable:
        return None
    return {"id": model.id, "version": model.version}


def _performance(meta: Mapping[str, Any], facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """AUROC with 95% CI per population, from the facts' evaluation or the metadata's metrics."""
    rows: list[dict[str, Any]] = []
    def add(group: str, name: str, m: Mapping[str, Any]) -> None:
        if m.get("auroc") is None:
            return
        ci = m.get("auroc_ci95") or [None, None]
        rows.append({"group": group, "name": name, "n": m.get("n"), "auroc": m["auroc"],
                     "lo": ci[0], "hi": ci[1], "slope": m.get("calibration_slope"),
                     "brier": m.get("brier")})
    complaint_names = dict(zip(ROWS.allowed, ROWS.allowed_labels, strict=True))
    perf = facts.get("performance") or {}
    if perf.get("overall"):
        add("Overall", "All complaints", {**perf["overall"],
                                          "calibration_slope": perf["calibration"].get("slope")})
        for dim, groups in perf.get("subgroups", {}).items():
            for name, m in groups.items():
                add(f"By {dim}", complaint_names.get(name, name), m)
        return rows
    metrics = meta.get("metrics") or {}
    if metrics.get("model"):
        add("Overall", "All complaints", metrics["model"])
    if metrics.get("ceiling"):
        add("Overall", "Best achievable (the simulator's own probabilities)", metrics["ceiling"])
    if metrics.get("logistic_baseline"):
        add("Overall", "Logistic regression baseline", metrics["logistic_baseline"])
    for setting, m in metrics.get("by_care_setting", {}).items():
        add("By care setting", SETTING_TEXT.get(setting, setting), m)
    for complaint, m in metrics.get("by_complaint", {}).items():
        add("By complaint", complaint_names.get(complaint, complaint), m)
    return rows


def model_facts(info: Mapping[str, str]) -> dict[str, Any] | None:
    """The model facts panel's content, from the model version's metadata and facts file.

    The texts (intended use, outcome, limitations, when not to use) come from
    :mod:`cds.facts`, the one place the model card is written from too.
    """
    source = _model_source(info)
    if source is None:
        return None
    meta, directory = source
    facts: dict[str, Any] | None = None
    try:
        listed = json.loads((directory / "manifest.json").read_text()).get("files", {})
        if FACTS_FILE in listed:  # verified with the rest of the artefact at load
            facts = json.loads((directory / FACTS_FILE).read_text())
    except (OSError, ValueError):
        facts = None
    facts = facts or build_facts(meta, None)
    population = [{"label": column_feature(c).label, "from": f"{round(lo, 1) + 0.0:g}",
                   "to": short_unit(f"{round(hi, 1) + 0.0:g}", column_feature(c).unit)}
                  for c, (lo, hi) in (meta.get("population") or {}).items()]
    evaluation = facts.get("performance") or {}
    bins = (evaluation.get("calibration") or {}).get("bins")
    curve = (facts.get("clinical_utility") or {}).get("at")
    facts = {**facts, "limitations": [_no_file(x) for x in facts.get("limitations") or []]}
    if isinstance(facts.get("thresholds"), Mapping):
        facts["thresholds"] = {**facts["thresholds"], "decisions": [
            {**d, "rationale": _no_file(d["rationale"])} if isinstance(d.get("rationale"), str)
            else d for d in facts["thresholds"].get("decisions") or []],
            "rationale": _no_file(str(facts["thresholds"].get("rationale") or ""))}
    return {"id": meta.get("id"), "version": meta.get("version"), "facts": facts,
            "plots": {"calibration": calibration_plot(bins) if bins else None,
                      "decision": decision_curve(curve) if curve else None,
                      "decision_points": curve or []},
            "bands": meta.get("bands"), "performance": _performance(meta, facts),
            "population": population, "population_method": meta.get("population_method"),
            "training": meta.get("training_data", {}),
            "evaluation_data": _no_file((meta.get("metrics") or {}).get("evaluation_data")
                                        or evaluation.get("evaluation_data") or "")}


_FILE_NOTE = re.compile(r"\s*\(see [^)]*\.(?:md|json|parquet|csv|txt)\)")
_DATA_FILE = re.compile(r"[\w./-]+\.(?:parquet|csv|ndjson|json)\s*\((?:sha256 \w+, )?(\d+) rows\)")


def _no_file(text: str) -> str:
    """A fact without a file a clinician cannot open: ``(see CLINICAL.md)`` goes, and
    ``eval.parquet (sha256 ..., 20000 rows)`` reads ``20,000 held-out rows``."""
    text = _DATA_FILE.sub(lambda m: f"{int(m.group(1)):,} held-out rows", text)
    return _FILE_NOTE.sub("", text)
