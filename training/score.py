"""``cds score``: batch probabilities and exact contributions for a directory of Parquet files.

Input rows are in the training schema (one row per complaint; no outcome needed). Each row is
validated against the contract exactly as for training; a row that breaks a rule, or carries a
red flag (refer, never score), is kept in the output with its ``reason`` and no probability, so
the output has one row per input row, in order. Output columns: the input's identifiers
(:data:`KEEP`, when present), ``complaint``, ``raw_score``, ``probability``, ``band``,
``base_value``, one ``contribution_<column>`` per model column, ``model_version``, ``reason``
and ``warning`` (the red-flag questions not asked, named; the row is still scored).

``engine="local"`` scores file by file in this process; ``engine="dask"`` maps the same function
over the partitions of ``dask.dataframe.read_parquet`` on a cluster (a local one when no
scheduler is given). Each worker loads and verifies the model once, by path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cds.errors import UserError
from cds.features import MODEL_COLUMNS, RED_FLAGS
from cds.intake import rows_from_frame
from cds.model import Model, load_model
from cds.safety import screen_incomplete

from .columns import Mapping, load_mapping
from .schema import COMPLAINT, canonical
from .tables import read_frame
from .tidy import tidy
from .validation import row_reasons

KEEP = ("patient_id", "assessment_id")
_MODELS: dict[str, Model] = {}


def output_columns(frame_columns: list[str]) -> list[str]:
    keep = [c for c in KEEP if c in frame_columns]
    return [*keep, COMPLAINT, "raw_score", "probability", "band", "base_value",
            *(f"contribution_{c}" for c in MODEL_COLUMNS), "model_version", "reason", "warning"]


def screen_warnings(clean: pd.DataFrame, flagged: np.ndarray) -> np.ndarray:
    """Per row, :func:`cds.safety.screen_incomplete`'s message (``None`` when every red-flag
    question that applies was answered): computed once per pattern of answers, not per row."""
    fields = sorted({f.name for f in RED_FLAGS} | {COMPLAINT})  # red flags apply by complaint
    columns = {}
    for name in fields:
        if name not in clean.columns:
            columns[name] = [None] * len(clean)
        else:
            column = clean[name].astype(object)
            columns[name] = column.where(column.notna(), None).tolist()
    keys = list(zip(*(columns[n] for n in fields), flagged.tolist(), strict=True))
    messages: dict[tuple[Any, ...], str | None] = {}
    for key in set(keys):
        record = dict(zip(fields, key[:-1], strict=True))
        complaint = record.pop(COMPLAINT)
        record["complaints"] = [complaint] if complaint is not None else None
        found = screen_incomplete(record, refer=bool(key[-1]))
        messages[key] = found[0]["message"] if found else None
    return np.array([messages[k] for k in keys], dtype=object)


def _model(path: str) -> Model:
    """The verified model at ``path``, loaded once per process (workers included)."""
    if path not in _MODELS:
        _MODELS[path] = load_model(path)
    return _MODELS[path]


def score_frame(model: Model, frame: pd.DataFrame, mapping: Mapping | None = None) -> pd.DataFrame:
    """Score one frame (see the module docstring for the output), tidied first
    (:func:`training.tidy.tidy`: names by ``mapping``, values; no row is dropped)."""
    frame = tidy(frame.reset_index(drop=True), mapping, dedupe=False).frame
    columns = output_columns([str(c) for c in frame.columns])
    if frame.empty:
        return _empty(columns, frame)
    reason, _ = row_reasons(frame, require_label=False)
    clean = canonical(frame)
    flagged = np.zeros(len(frame), dtype=bool)
    for f in RED_FLAGS:
        if f.name in clean.columns:
            flagged |= clean[f.name].fillna(0).to_numpy(dtype=float) > 0
    no_complaint = (clean[COMPLAINT].isna().to_numpy() if COMPLAINT in clean.columns
                    else np.ones(len(frame), dtype=bool))
    reason = reason.mask((reason == "") & flagged, "red_flag: refer")
    reason = reason.mask((reason == "") & no_complaint, "no complaint")
    ok = (reason == "").to_numpy()
    out = pd.DataFrame({c: frame[c] for c in KEEP if c in frame.columns})
    out[COMPLAINT] = clean[COMPLAINT].astype(object) if COMPLAINT in clean.columns else None
    n = len(frame)
    raw = np.full(n, np.nan)
    contributions = np.full((n, len(MODEL_COLUMNS) + 1), np.nan)
    if ok.any():
        X = rows_from_frame(clean.loc[ok])
        raw[ok] = model.predict_raw(X)
        contributions[ok] = model.contributions(X)
    probability = model.probability(raw)
    out["raw_score"] = raw
    out["probability"] = probability
    out["band"] = [model.band(float(p)) if ok_i else None for p, ok_i in zip(probability, ok, strict=True)]
    out["base_value"] = contributions[:, -1]
    for j, c in enumerate(MODEL_COLUMNS):
        out[f"contribution_{c}"] = contributions[:, j]
    out["model_version"] = model.version
    out["reason"] = reason.to_numpy()
    valid = ok | ((reason == "red_flag: refer").to_numpy())
    out["warning"] = np.where(valid, screen_warnings(clean, flagged), np.array(None))
    return out[columns].astype(_text_dtypes(out))


_TEXT = (COMPLAINT, "band", "model_version", "reason", "warning")


def _text_dtypes(frame: pd.DataFrame) -> dict[str, str]:
    """Text columns as pandas ``string`` (Arrow needs a type even when a partition is empty)."""
    return {c: "string" for c in frame.columns
            if c in _TEXT or (c in KEEP and not pd.api.types.is_numeric_dtype(frame[c]))}


def _empty(columns: list[str], frame: pd.DataFrame) -> pd.DataFrame:
    """An empty output frame with the output's dtypes (numeric identifiers keep the input's)."""
    out = pd.DataFrame({c: pd.Series(dtype=frame[c].dtype if c in KEEP
                                     else object if c in _TEXT else float) for c in columns})
    return out.astype(_text_dtypes(out))


def _score_partition(frame: pd.DataFrame, model_path: str, mapping: Mapping | None = None
                     ) -> pd.DataFrame:
    return score_frame(_model(model_path), frame, mapping)


def _files(data: Path, engine: str) -> list[Path]:
    """The input files: Parquet (a file or a directory's), or CSV on the local engine."""
    if not data.exists():
        raise UserError(f"{data}: no such file or directory")
    suffixes = (".parquet", ".pq") if engine == "dask" else (".parquet", ".pq", ".csv", ".tsv")
    if data.is_dir():
        files = sorted(f for f in data.rglob("*") if f.suffix.lower() in suffixes)
        kinds = {f.suffix.lower() for f in files}
        if len(kinds - {".pq"}) > 1:
            raise UserError(f"{data}: holds both Parquet and CSV files; score one kind at a time")
    else:
        files = [data] if data.suffix.lower() in suffixes else []
    if not files:
        where = "holds no" if data.is_dir() else "is not a"
        raise UserError(f"{data}: {where} {' or '.join(suffixes)} file"
                        + ("; --engine dask reads Parquet only" if engine == "dask" else ""))
    return files


def score(model: str | Path, data: str | Path, out: str | Path, *, engine: str = "local",
          scheduler: str | None = None, root: Path | None = None,
          progress: Callable[[str], None] | None = None,
          columns: str | Path | None = None) -> dict[str, Any]:
    """Score every row under ``data`` into Parquet files under ``out``; return counts and timing.

    ``columns`` is a mapping file (:mod:`training.columns`) for the input's column names."""
    mapping = load_mapping(columns) if columns is not None else None
    say = progress or (lambda _: None)
    loaded = load_model(model, root=root)
    path = str(loaded.path.resolve())
    data, out = Path(data), Path(out)
    if engine not in ("local", "dask"):
        raise UserError(f"engine must be 'local' or 'dask', not {engine!r}")
    files = _files(data, engine)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if engine == "local":
        rows = 0
        for i, file in enumerate(files):
            scored = score_frame(loaded, read_frame(file), mapping)
            scored.to_parquet(out / f"part.{i}.parquet", index=False)
            rows += len(scored)
            say(f"  scored {file.name}: {len(scored)} rows ({i + 1}/{len(files)} files)")
    else:
        import dask.dataframe as dd

        from .distributed import dask_client

        with dask_client(scheduler) as client:
            frame = dd.read_parquet([str(f) for f in files])
            meta = _empty(output_columns(list(frame.columns)), frame._meta)
            scored = frame.map_partitions(_score_partition, path, mapping, meta=meta)
            say(f"  scoring {frame.npartitions} partitions on "
                f"{len(client.scheduler_info().get('workers', {}))} workers")
            scored.to_parquet(str(out), write_index=False)
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in out.glob("*.parquet"))
    seconds = time.perf_counter() - t0
    return {"rows": rows, "seconds": seconds, "model_version": loaded.version, "engine": engine}
