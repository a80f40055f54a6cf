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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cds.errors import UserError
from cds.features import MODEL_COLUMNS, RED_FLAGS
from cds.intake import rows_from_frame
from cds.model import Model, load_model
from cds.safety import screen_incomplete

from .columns import Mapping, load_mapping
from .schema import COMPLAINT, canonical
from .tidy import tidy
from .validation import row_reasons

KEEP = ("patient_id", "assessment_id")
CHUNK_ROWS = 131_072  # rows scored and written at a time: memory stays bounded on big files
_MODELS: dict[str, Model] = {}


def output_columns(frame_columns: list[str]) -> list[str]:
    keep = [c for c in KEEP if c in frame_columns]
    return [*keep, COMPLAINT, "raw_score", "probability", "band", "base_value",
            *(f"contribution_{c}" for c in MODEL_COLUMNS), "model_version", "reason", "warning"]


def screen_warnings(clean: pd.DataFrame, flagged: np.ndarray) -> np.ndarray:
    """Per row, :func:`cds.safety.screen_incomplete`'s message (``None`` when every red-flag
    question that applies was answered): computed once per pattern of answers, not per row
    (the patterns are found columnwise: each column factorised, the codes combined)."""
    messages, inverse = _warning_patterns(clean, flagged)
    warnings: np.ndarray = messages[inverse]
    return warnings


def _warning_patterns(clean: pd.DataFrame, flagged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(message of each pattern of answers, each row's pattern): :func:`screen_warnings`."""
    fields = sorted({f.name for f in RED_FLAGS} | {COMPLAINT})  # red flags apply by complaint
    n = len(clean)
    key = np.zeros(n, dtype=np.int64)
    levels: dict[str, np.ndarray] = {}
    codes: dict[str, np.ndarray] = {}
    for name in fields:
        if name not in clean.columns:
            codes[name] = np.zeros(n, dtype=np.int64)
            levels[name] = np.array([None], dtype=object)
            continue
        code, uniques = _factorize(clean[name])
        codes[name] = code.astype(np.int64) + 1  # 0: not answered
        levels[name] = np.array([None, *uniques], dtype=object)
    for name in fields:  # mixed radix: one integer per pattern of answers
        key = key * len(levels[name]) + codes[name]
    key = key * 2 + flagged.astype(np.int64)
    patterns, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    messages = np.empty(len(patterns), dtype=object)
    for k, row in enumerate(first):
        record = {name: levels[name][codes[name][row]] for name in fields}
        complaint = record.pop(COMPLAINT)
        record["complaints"] = [complaint] if complaint is not None else None
        found = screen_incomplete(record, refer=bool(flagged[row]))
        messages[k] = found[0]["message"] if found else None
    return messages, inverse.reshape(-1)


def _factorize(column: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Codes (-1: missing) and the distinct values as Python objects; a categorical's own codes
    and categories, numbers factorised as numbers (no object copy of a million cells)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), list(column.cat.categories.astype(object))
    if column.dtype == np.float64:  # a yes/no answer (canonical: 0.0, 1.0 or NaN) by comparison
        x = column.to_numpy()
        code = np.where(x == 0.0, 0, np.where(x == 1.0, 1, np.where(np.isnan(x), -1, 2)))
        if not (code == 2).any():
            return code, [0.0, 1.0]
    code, uniques = pd.factorize(column, use_na_sentinel=True)
    return code, list(np.asarray(uniques, dtype=object))


def _model(path: str) -> Model:
    """The verified model at ``path``, loaded once per process (workers included)."""
    if path not in _MODELS:
        _MODELS[path] = load_model(path)
    return _MODELS[path]


def score_frame(model: Model, frame: pd.DataFrame, mapping: Mapping | None = None, *,
                threads: int | None = None) -> pd.DataFrame:
    """Score one frame (see the module docstring for the output), tidied first
    (:func:`training.tidy.tidy`: names by ``mapping``, values; no row is dropped).

    Columnar throughout: the model matrix is built for every row and the scorable rows taken
    from it (no copy of the frame), each output column is one contiguous array, and the text
    columns are Arrow strings built from codes (no Python string per row). ``threads``: the
    explainer's threads (default: every CPU)."""
    prepared = prepare(frame, mapping)
    if isinstance(prepared, pd.DataFrame):
        return prepared
    return finish(model, prepared, explain(model, prepared, threads))


@dataclass
class Prepared:
    """A frame tidied, validated and encoded (:func:`prepare`), waiting for its explanation."""

    frame: pd.DataFrame  # tidied
    clean: pd.DataFrame  # canonical dtypes
    reason: pd.Series  # '' for the rows to score
    flagged: np.ndarray  # a red flag: refer
    ok: np.ndarray  # the rows to score
    X: np.ndarray | None  # their model matrix (None: no row to score)


def prepare(frame: pd.DataFrame, mapping: Mapping | None = None) -> Prepared | pd.DataFrame:
    """Everything :func:`score_frame` does before the explanation (the empty output when the
    frame has no row)."""
    frame = tidy(frame.reset_index(drop=True), mapping, dedupe=False).frame
    if frame.empty:
        return _empty(output_columns([str(c) for c in frame.columns]), frame)
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
    X = None
    if ok.any():
        with np.errstate(divide="ignore", invalid="ignore"):  # rows not scored: any value
            X = rows_from_frame(clean)
        X = X if ok.all() else X[ok]
    return Prepared(frame, clean, reason, flagged, ok, X)


def explain(model: Model, prepared: Prepared, threads: int | None = None) -> np.ndarray | None:
    """The contributions of the prepared rows to score (``None`` when there is none)."""
    if prepared.X is None:
        return None
    return model.contributions(prepared.X, n_threads=threads)


def finish(model: Model, prepared: Prepared, found: np.ndarray | None) -> pd.DataFrame:
    """The output frame of :func:`score_frame` from a prepared frame and its contributions."""
    frame, clean, reason, ok = prepared.frame, prepared.clean, prepared.reason, prepared.ok
    n = len(frame)
    raw = np.full(n, np.nan)
    contributions = np.full((len(MODEL_COLUMNS) + 1, n), np.nan)  # a row per output column
    if found is not None:
        # exact TreeSHAP: the contributions and the base value sum to the raw score (tested in
        # test_model), so the trees are walked once, not twice
        raw[ok] = found.sum(axis=1)
        contributions[:, ok] = found.T
    probability = model.probability(raw)
    valid = ok | ((reason == "red_flag: refer").to_numpy())
    # built as one dict, in the output's order: one frame construction, no column-by-column
    # insertion; text columns as Arrow strings from codes
    out: dict[str, Any] = {c: frame[c].array for c in KEEP if c in frame.columns}
    out[COMPLAINT] = (_strings(*_factorize(clean[COMPLAINT])) if COMPLAINT in clean.columns
                      else _strings(np.full(n, -1), []))
    out["raw_score"] = raw
    out["probability"] = probability
    out["band"] = _strings(band_codes(model, probability, ok), list(BANDS))
    out["base_value"] = contributions[-1]
    for j, c in enumerate(MODEL_COLUMNS):
        out[f"contribution_{c}"] = contributions[j]
    out["model_version"] = _strings(np.zeros(n, dtype=np.int64), [model.version])
    out["reason"] = _strings(*_factorize(reason))
    messages, pattern = _warning_patterns(clean, prepared.flagged)
    out["warning"] = _strings(np.where(valid, pattern, -1), list(messages))
    scored = pd.DataFrame(out, columns=output_columns([str(c) for c in frame.columns]),
                          copy=False)
    text = {c: t for c, t in _text_dtypes(scored).items() if scored[c].dtype != pd.StringDtype()}
    return scored.astype(text) if text else scored


BANDS = ("high", "moderate", "low")


def _strings(codes: np.ndarray, values: list[Any]) -> pd.api.extensions.ExtensionArray:
    """``values[code]`` of each row as pandas ``string`` (Arrow) without a Python string per
    row; missing where the code is -1 or the value is ``None``."""
    import pyarrow as pa

    codes = np.asarray(codes, dtype=np.int64)
    dictionary = pa.array([None if v is None else str(v) for v in values],
                          type=pa.large_string())
    taken = dictionary.take(pa.array(np.where(codes < 0, 0, codes), mask=codes < 0))
    return pd.arrays.ArrowStringArray(taken)


def band_codes(model: Model, probability: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """The position in :data:`BANDS` of each scored row's :meth:`cds.model.Model.band`; -1
    where not scored."""
    with np.errstate(invalid="ignore"):
        high = probability >= model.bands["high_from"]
        moderate = probability >= model.bands["moderate_from"]
    return np.where(ok, np.where(high, 0, np.where(moderate, 1, 2)), -1)


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
    """One partition on a Dask worker, explained on one thread: the cluster's workers and
    threads are the parallelism (a task that also took every CPU of its machine would run
    workers x CPUs threads on CPUs cores: 2 workers on 2 cores ran 4, and 2 were no faster
    than 1)."""
    return score_frame(_model(model_path), frame, mapping, threads=1)


def _write_partition(frame: pd.DataFrame, path: str, schema: Any) -> int:
    """One scored partition written to its own Parquet file under the output's ``schema`` (all
    parts alike, even an empty one); its row count."""
    import pyarrow as pa

    from .score_files import write

    write(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), Path(path),
          None).close()
    return len(frame)


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
        from .score_files import score_files

        def file_done(i: int, count: int) -> None:
            say(f"  scored {files[i].name}: {count} rows ({i + 1}/{len(files)} files)")

        rows = score_files(loaded, files, [out / f"part.{i}.parquet" for i in range(len(files))],
                           mapping, file_done)
    else:
        import dask.dataframe as dd
        import pyarrow as pa
        from dask.delayed import delayed
        from distributed import as_completed

        from .distributed import dask_client

        with dask_client(scheduler) as client:
            frame = dd.read_parquet([str(f) for f in files])
            meta = _empty(output_columns(list(frame.columns)), frame._meta)
            scored = frame.map_partitions(_score_partition, path, mapping, meta=meta)
            schema = pa.Schema.from_pandas(meta, preserve_index=False)
            # one write per partition, so that each is reported as it finishes
            writes = [delayed(_write_partition)(part, str(out / f"part.{i}.parquet"), schema)
                      for i, part in enumerate(scored.to_delayed())]
            say(f"  scoring {len(writes)} partitions on "
                f"{len(client.scheduler_info().get('workers', {}))} workers")
            rows = 0
            for done, future in enumerate(as_completed(client.compute(writes)), 1):  # type: ignore[no-untyped-call]
                rows += future.result()
                say(f"  scored partition {done}/{len(writes)} ({rows} rows so far)")
    seconds = time.perf_counter() - t0
    return {"rows": rows, "seconds": seconds, "model_version": loaded.version, "engine": engine}
