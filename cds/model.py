"""A model bundle: resolve, verify, load; raw score, calibrated probability, exact contributions.

An artefact directory (``models/gmed-driver/<version>/``) holds LightGBM's native text model,
``calibration.json``, ``metadata.json``, ``MODEL_CARD.md`` and ``manifest.json`` (SHA-256 of every
other file). The manifest is verified before any file is parsed; a model trained on another
version of the feature contract, written in a text format other than LightGBM's ``v4``, or
declaring a LightGBM major version this code was not tested with is refused. Every refusal is a
:class:`~cds.errors.ModelUnavailable` naming the artefact (``gmed-driver/<version>``, no absolute
path: the message reaches ``/readyz``) and the problem. Never pickle.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IntegrityError, ModelUnavailable
from .features import MODEL_COLUMNS, contract_hash
from .registry import check_name, read_alias
from .treeshap import TreeExplainer

MODEL_ID = "gmed-driver"
MODEL_FILE = "model.txt"
REQUIRED_FILES = (MODEL_FILE, "calibration.json", "metadata.json")
MODELS_DIR_ENV = "GMED_MODELS_DIR"
# What the numpy explainer (cds.treeshap) was written and tested against: the ``version=`` line
# of LightGBM's text model, and the major version of the LightGBM that wrote it.
MODEL_FORMATS = ("v4",)
LIGHTGBM_MAJORS = ("4",)


def models_dir() -> Path:
    """Where artefacts and ``registry.json`` live: ``$GMED_MODELS_DIR`` or the repo's ``models/``."""
    configured = os.environ.get(MODELS_DIR_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parent.parent / "models"


def artefact_name(directory: Path) -> str:
    """``gmed-driver/<version>``: how messages name an artefact (no absolute path)."""
    return f"{directory.parent.name}/{directory.name}"


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve(path_or_alias: str | Path, root: Path | None = None) -> Path:
    """An artefact directory from a path or a registry alias (``production``) or version.

    A :class:`~pathlib.Path`, or text with a path separator, is a directory given on purpose;
    anything else is a name, which must be a valid alias or version name
    (:data:`cds.registry.NAME`): a registry entry never leads outside ``models/gmed-driver/``.
    """
    name = str(path_or_alias)
    candidate = Path(path_or_alias)
    if isinstance(path_or_alias, Path) or "/" in name or os.sep in name or name in (".", ".."):
        if candidate.is_dir():
            return candidate
        raise ModelUnavailable(f"No model directory '{candidate.name}'")
    root = root or models_dir()
    version = read_alias(root, check_name(name, "model")) or name
    directory = root / MODEL_ID / version
    if not directory.is_dir() and candidate.is_dir():
        return candidate  # a directory in the working directory, named without a path
    if not directory.is_dir():
        raise ModelUnavailable(f"No model '{name}': neither a registry alias nor a version "
                               f"under {MODEL_ID}/")
    return directory


def verify_manifest(directory: Path) -> dict[str, str]:
    """Check every file listed in ``manifest.json`` against its SHA-256; return the listing."""
    where = artefact_name(directory)
    manifest_file = directory / "manifest.json"
    if not manifest_file.is_file():
        raise IntegrityError(f"{where}: manifest.json is missing")
    try:
        files: dict[str, str] = json.loads(manifest_file.read_text())["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise IntegrityError(f"{where}: manifest.json is unreadable") from e
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in files.items()):
        raise IntegrityError(f"{where}: manifest.json is unreadable (files: not names to digests)")
    missing = [f for f in REQUIRED_FILES if f not in files]
    if missing:
        raise IntegrityError(f"{where}: manifest does not list {', '.join(missing)}")
    for name, digest in files.items():
        path = directory / name
        if Path(name).name != name or not path.is_file():
            raise IntegrityError(f"{where}: {name} listed in the manifest is missing")
        if sha256_file(path) != digest:
            raise IntegrityError(f"{where}: {name} does not match its SHA-256 in the manifest "
                                 "(corrupted or tampered); refusing to load")
    return files


class Model:
    """A verified, loaded model. Build with :func:`load_model`."""

    def __init__(self, directory: Path, metadata: dict[str, Any],
                 calibration: dict[str, float], explainer: TreeExplainer) -> None:
        self.path = directory
        self.metadata = metadata
        self.calibration = calibration
        self._explainer = explainer
        self.id: str = metadata.get("id", MODEL_ID)
        self.version: str = metadata["version"]
        self.bands: dict[str, float] = metadata["bands"]

    @property
    def trained_on(self) -> str:
        return str(self.metadata.get("trained_on", "unknown"))

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Raw score (log-odds before calibration) per row, as LightGBM computes it."""
        return self._explainer.predict_raw(np.asarray(X, dtype=np.float64))

    def contributions(self, X: np.ndarray, *, n_threads: int | None = None) -> np.ndarray:
        """Exact TreeSHAP on the raw score: (n, n_columns + 1), last column the base value.

        The same numbers as LightGBM's ``pred_contrib`` (tested to 1e-9), computed by our own
        explainer (:mod:`cds.treeshap`), which needs neither LightGBM nor shap. ``n_threads``:
        at most this many threads (default: every CPU; a Dask task takes one).
        """
        return self._explainer.contributions(np.asarray(X, dtype=np.float64), n_threads=n_threads)

    def probability(self, raw: np.ndarray | float) -> np.ndarray:
        """Calibrated probability from the raw score (Platt scaling fitted on held-out data)."""
        z = self.calibration["intercept"] + self.calibration["slope"] * np.asarray(raw)
        result: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return result

    def probabilities(self, raw: Sequence[float]) -> list[float]:
        """:meth:`probability` of a few raw scores, as Python floats, bit for bit: numpy's
        ``exp`` (which is not the C library's ``exp`` to the last bit) on one array, and the
        rest in Python floats, which round as numpy's do, without five more numpy calls."""
        intercept, slope = self.calibration["intercept"], self.calibration["slope"]
        exp = np.exp(np.array([-(intercept + slope * r) for r in raw], dtype=np.float64))
        return [1.0 / (1.0 + e) for e in exp.tolist()]

    def probability_of(self, raw: float) -> float:
        """:meth:`probability` of one raw score, without numpy's per-call cost (explanations
        call it once per line)."""
        z = self.calibration["intercept"] + self.calibration["slope"] * raw
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def band(self, probability: float) -> str:
        """``low`` / ``moderate`` / ``high`` by the thresholds stored in the metadata."""
        if probability >= self.bands["high_from"]:
            return "high"
        return "moderate" if probability >= self.bands["moderate_from"] else "low"


def _read_json(directory: Path, name: str) -> dict[str, Any]:
    try:
        data = json.loads((directory / name).read_text())
    except ValueError as e:  # includes bytes that are not UTF-8
        raise ModelUnavailable(f"{artefact_name(directory)}: {name} is not valid JSON") from e
    if not isinstance(data, dict):
        raise ModelUnavailable(f"{artefact_name(directory)}: {name} is not a JSON object")
    return data


def _check_provenance(directory: Path, metadata: dict[str, Any], model_text: str) -> None:
    """Refuse a model from another contract, or written by a LightGBM/format not supported."""
    where = artefact_name(directory)
    if metadata.get("contract_hash") != contract_hash():
        raise ModelUnavailable(f"{where}: trained on another version of the feature contract "
                               f"({str(metadata.get('contract_hash'))[:12]}, this code "
                               f"{contract_hash()[:12]}); retrain it")
    if list(metadata.get("columns", [])) != list(MODEL_COLUMNS):
        raise ModelUnavailable(f"{where}: column order differs from the contract")
    for key in ("version", "bands"):
        if key not in metadata:
            raise ModelUnavailable(f"{where}: metadata.json lacks '{key}'")
    libraries = metadata.get("libraries")
    lightgbm = str(libraries.get("lightgbm", "")) if isinstance(libraries, dict) else ""
    if lightgbm and lightgbm.split(".")[0] not in LIGHTGBM_MAJORS:
        raise ModelUnavailable(f"{where}: written by LightGBM {lightgbm[:20]}; this code reads "
                               f"models of LightGBM {'/'.join(LIGHTGBM_MAJORS)}.x only")
    header = model_text[:4096].splitlines()
    declared = next((line.partition("=")[2].strip() for line in header
                     if line.startswith("version=")), None)
    if declared not in MODEL_FORMATS:
        raise ModelUnavailable(f"{where}: {MODEL_FILE} declares format version "
                               f"{str(declared)[:20]}; this code reads {', '.join(MODEL_FORMATS)}")


def load_model(path_or_alias: str | Path = "production", *, root: Path | None = None) -> Model:
    """Resolve, verify (manifest first), check contract and provenance, and load a model."""
    directory = resolve(path_or_alias, root)
    where = artefact_name(directory)
    verify_manifest(directory)
    metadata = _read_json(directory, "metadata.json")
    calibration = _read_json(directory, "calibration.json")
    try:
        model_text = (directory / MODEL_FILE).read_text()
    except ValueError as e:
        raise ModelUnavailable(f"{where}: {MODEL_FILE} is not text") from e
    _check_provenance(directory, metadata, model_text)
    if not all(isinstance(calibration.get(k), int | float) and math.isfinite(calibration[k])
               for k in ("intercept", "slope")):
        raise ModelUnavailable(f"{where}: calibration.json lacks intercept/slope")
    try:
        explainer = TreeExplainer.from_model_string(model_text)
    except Exception as e:  # the bytes passed the manifest: whatever fails here is the format
        raise ModelUnavailable(f"{where}: {MODEL_FILE} is not a LightGBM model this "
                               "version can read") from e
    if explainer.n_features != len(MODEL_COLUMNS):
        raise ModelUnavailable(f"{where}: the model has {explainer.n_features} features, "
                               f"the contract {len(MODEL_COLUMNS)}")
    return Model(directory, metadata, calibration, explainer)
