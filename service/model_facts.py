"""The model facts panel's content (``/ui/model`` and beside every assessment): what the model
is, who it was trained on, how well it did, and what not to use it for.

Built from the verified artefact of the version an assessment names (the loaded model's
metadata when it is that version). The texts (intended use, outcome, limitations, when not to
use) come from :mod:`training.facts`, the one place the model card is written from too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cds.errors import CdsError, ModelUnavailable
from cds.explain import with_unit
from cds.features import ROWS, column_feature
from cds.model import resolve, verify_manifest
from training.facts import FACTS_FILE, build_facts

from .model import get_model

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
    :mod:`training.facts`, the one place the model card is written from too.
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
    return {"id": meta.get("id"), "version": meta.get("version"), "facts": facts,
            "bands": meta.get("bands"), "performance": _performance(meta, facts),
            "population": population, "population_method": meta.get("population_method"),
            "training": meta.get("training_data", {}),
            "evaluation_data": (meta.get("metrics") or {}).get("evaluation_data")
            or (facts.get("performance") or {}).get("evaluation_data")}
