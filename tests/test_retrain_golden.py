"""Golden records: the check a model passes before it is put into service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import cds
from cds.golden import check_model, golden_records
from cds.model import Model
from cds.validate import validate_record


def test_golden_records_are_valid_and_cover_every_complaint_and_a_red_flag() -> None:
    records = golden_records()
    for record in records:
        validate_record(record)
    complaints = {c for r in records for c in r["complaints"]}
    assert complaints == {"pfp", "itbs", "lbp"}
    assert any(r.get("rf_trauma_rapid_swelling") for r in records)


def test_a_good_model_passes(tiny_model: Model) -> None:
    assert check_model(tiny_model) == []


class _Broken:
    """A model whose explanations no longer add up (e.g. a mismatched library)."""

    def __init__(self, model: Model) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._model.contributions(X) + 0.1
        return out


def test_a_model_whose_explanations_do_not_add_up_fails(tiny_model: Model) -> None:
    problems = check_model(_Broken(tiny_model))  # type: ignore[arg-type]
    assert problems and all("do not add up" in p for p in problems)


def test_the_check_imports_nothing_the_service_must_not(tiny_model_dir: Path) -> None:
    code = ("import sys, cds; from cds.golden import check_model; "
            f"check_model(cds.load_model({str(tiny_model_dir)!r})); "
            "print(sorted(m for m in ('shap', 'matplotlib', 'dask', 'numba', 'pandera') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert cds.load_model(tiny_model_dir)
