"""``cds recalibrate``: refit only the calibration on local outcomes, as a new version.

The usual first step when a model moves to a new site (Van Calster et al. 2019): the trees
(``model.txt``) are copied byte for byte, ``calibration.json`` is refitted on the local raw
scores, and the new version's metadata records its parent and the data it was recalibrated on.
The card and facts are regenerated and the manifest resealed. Two methods:

* ``platt`` (default): intercept and slope refitted (needs a few hundred outcomes);
* ``intercept``: recalibration-in-the-large only, the slope kept (small samples, or when only
  the outcome rate differs).

The figures reported are *apparent*: measured on the rows the calibration was fitted on. With
two parameters the optimism is small, and the card says so; ``cds evaluate`` on later outcomes
is the honest check.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import UserError
from cds.model import MODEL_FILE, load_model
from cds.monitoring import REFERENCE_FILE

from .artefact import write_documents
from .calibration import fit_intercept, fit_platt
from .curves import evaluation_figures
from .dataset import load, require_outcomes
from .evaluate import metrics
from .samplesize import minimum_sample_size
from .validation import validation_lines

METHODS = ("platt", "intercept")


def refit(raw: np.ndarray, y: np.ndarray, current: dict[str, float], method: str) -> dict[str, float]:
    """New calibration parameters from raw scores and local labels."""
    if method == "platt":
        return fit_platt(raw, y)
    if method == "intercept":
        return fit_intercept(raw, y, float(current["slope"]))
    raise ValueError(f"method must be one of {', '.join(METHODS)}")


def recalibrate(model: str | Path, data: str | Path, *, version: str | None = None,
                method: str = "platt", root: Path | None = None,
                quarantine: str | Path | None = None, reps: int = 200, seed: int = 0,
                progress: Callable[[str], None] | None = None,
                columns: str | Path | None = None) -> Path:
    """Write a new version beside ``model`` with only its calibration refitted on ``data``."""
    say = progress or (lambda _: None)
    parent = load_model(model, root=root)  # verified before anything is reused
    say(f"reading and validating {data}")
    ds = load(data, quarantine=quarantine, columns=columns)
    for line in validation_lines(ds.validation):
        say(line)
    require_outcomes(ds, "recalibration")
    need = minimum_sample_size(2 if method == "platt" else 1, float(ds.y.mean()))
    if len(ds.y) < need.n:
        say(f"warning: {len(ds.y)} outcomes ({int(ds.y.sum())} events) are fewer than the "
            f"{need.n} ({need.events} events) Riley et al. 2020's criteria ask for "
            f"{'two calibration parameters' if method == 'platt' else 'the intercept'}; "
            "the new calibration is imprecise" + (" (--method intercept needs fewer)"
                                                  if method == "platt" else ""))
    raw = parent.predict_raw(ds.X)
    calibration = refit(raw, ds.y, parent.calibration, method)
    version = version or f"{parent.version}-recal-{ds.sha256[:8]}"
    out = parent.path.parent / version
    if out.exists():
        raise UserError(f"{out} exists; choose another --version")
    say(f"recalibrating {parent.version} -> {version} ({method}) on {len(ds.y)} outcomes")
    out.mkdir(parents=True)
    shutil.copyfile(parent.path / MODEL_FILE, out / MODEL_FILE)
    if (parent.path / REFERENCE_FILE).is_file():  # same training rows: the same drift baseline
        shutil.copyfile(parent.path / REFERENCE_FILE, out / REFERENCE_FILE)
    (out / "calibration.json").write_text(json.dumps({"method": method, **calibration},
                                                     indent=2) + "\n")
    p = 1.0 / (1.0 + np.exp(-(calibration["intercept"] + calibration["slope"] * raw)))
    description = (f"{ds.description}: apparent performance on the recalibration data "
                   "(calibration fitted on these rows)")
    meta: dict[str, Any] = {
        **parent.metadata,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "parent_version": parent.version,
        "trained_on": f"{parent.trained_on}; recalibrated on local outcomes ({ds.description})",
        "recalibration": {"method": method, "data": ds.provenance,
                          "sample_size": {**need.to_dict(), "rows": len(ds.y)},
                          "before": {k: parent.calibration[k] for k in ("intercept", "slope")},
                          "after": calibration},
        "metrics": {"evaluation_data": description, "model": metrics(ds.y, p, reps=reps)},
    }
    write_documents(out, meta, evaluation_figures(ds.y, p, ds.frame, reps=reps, seed=seed),
                    description)
    load_model(out, root=root)  # the new version must load and verify like any other
    return out
