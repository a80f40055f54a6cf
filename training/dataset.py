"""Training data: read any source, validate it, keep the rows a model may learn from.

A training frame has one row per presenting complaint, the contract's record fields as columns
(``complaint`` instead of the ``complaints`` list) and the observed outcome in ``hip_driver``
(0/1). :func:`load` is the one way in for training, evaluation and recalibration: read
(:mod:`training.sources`), validate (:mod:`training.validation`; bad rows to quarantine), set
aside rows without a complaint or outcome or with a red flag (those patients are referred, never
scored), and build the model matrix. Every row read is either learned from or in the quarantine
with its reason, and the counts are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cds.errors import UserError
from cds.features import RED_FLAGS
from cds.intake import rows_from_frame

from .columns import Mapping, load_mapping
from .schema import COMPLAINT, LABEL, infer_care_setting
from .sources import Source, read_source
from .tidy import tidy
from .validation import REASON, Validated, validate, write_quarantine

__all__ = ["COMPLAINT", "LABEL", "MIN_EVALUATION_OUTCOMES", "Dataset", "load", "prepare",
           "require_outcomes"]

# Fewer events (or non-events) than this and the bootstrap CIs of AUROC and calibration are not
# defined on most resamples; a refusal, not an estimate. Collins et al. 2016 (Stat Med 35:214,
# "Sample size considerations for the external validation of a multivariable prognostic model")
# recommend at least 100 of each for a validation: fewer gets a warning (:func:`outcome_warning`).
MIN_EVALUATION_OUTCOMES = 10
RECOMMENDED_EVALUATION_OUTCOMES = 100


@dataclass
class Dataset:
    """Model matrix, labels and the frame they came from (for subgroups and the ceiling)."""

    X: np.ndarray
    y: np.ndarray
    frame: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)
    description: str = ""
    sha256: str = ""
    validation: dict[str, Any] = field(default_factory=dict)
    simulated: bool = False

    @property
    def provenance(self) -> dict[str, Any]:
        """What the model records about its data (metadata ``training_data``)."""
        dates = None
        if "recorded_at" in self.frame.columns and self.frame["recorded_at"].notna().any():
            recorded = self.frame["recorded_at"].dropna().astype(str).str[:10]
            dates = {"outcomes_from": recorded.min(), "outcomes_to": recorded.max()}
        return {"source": self.description, "sha256": self.sha256, "rows": len(self.y),
                "excluded": self.excluded, "prevalence": round(float(self.y.mean()), 4),
                "dates": dates, "validation": self.validation}


def _with_setting(frame: pd.DataFrame) -> pd.DataFrame:
    if "care_setting" not in frame.columns or frame["care_setting"].isna().all():
        frame = frame.assign(care_setting=infer_care_setting(frame))
    return frame


def prepare(frame: pd.DataFrame) -> Dataset:
    """Select trainable rows of an already canonical frame (the simulator's) and build (X, y)."""
    if LABEL not in frame.columns or COMPLAINT not in frame.columns:
        raise ValueError(f"training data needs the columns '{COMPLAINT}' and '{LABEL}'")
    keep = frame[COMPLAINT].notna() & frame[LABEL].notna()
    excluded = {"no_complaint_or_control": int((~frame[COMPLAINT].notna()).sum()),
                "no_outcome": int((frame[COMPLAINT].notna() & frame[LABEL].isna()).sum())}
    flagged = np.zeros(len(frame), dtype=bool)
    for f in RED_FLAGS:
        if f.name in frame.columns:
            flagged |= frame[f.name].fillna(0).to_numpy(dtype=float) > 0
    excluded["red_flag"] = int((keep.to_numpy() & flagged).sum())
    keep &= ~flagged
    kept = _with_setting(frame.loc[keep.to_numpy()].reset_index(drop=True))
    return Dataset(rows_from_frame(kept), kept[LABEL].to_numpy(dtype=float), kept, excluded,
                   simulated="p_true" in frame.columns)


def from_source(source: Source, *, quarantine: str | Path | None = None,
                columns: str | Path | Mapping | None = None) -> tuple[Dataset, Validated]:
    """Tidy (:mod:`training.tidy`: names by ``columns``, values, duplicates), validate a read
    source and build the dataset; write the quarantine if asked."""
    mapping = load_mapping(columns) if isinstance(columns, str | Path) else columns
    raw = source.frame.reset_index(drop=True)
    tidied = tidy(raw, mapping)
    rows = tidied.frame.index.to_numpy()  # each tidied row's row in the file
    checked = validate(tidied.frame)
    # the quarantine shows rows as the file had them (names, units, spelling), with the reason
    quarantined = rows[checked.quarantine.index.to_numpy()]
    checked.quarantine = pd.concat([
        raw.loc[quarantined].assign(**{REASON: checked.quarantine[REASON].to_numpy()}),
        raw.loc[tidied.set_aside.index].assign(**{REASON: tidied.set_aside[REASON].to_numpy()}),
    ]).sort_index()
    checked.rows_in += len(tidied.set_aside) + tidied.duplicates.get("exact_duplicate", 0)
    checked.excluded.update({k: v for k, v in tidied.duplicates.items() if v})
    if len(source.rejected):
        checked.quarantine = pd.concat([source.rejected, checked.quarantine], ignore_index=True)
        checked.failures.insert(0, {"column": "(source)", "rule": source.kind,
                                    "rows": len(source.rejected),
                                    "message": "records that could not be read safely"})
        checked.rows_in += len(source.rejected)
    summary = checked.summary()
    summary.update(source.notes)
    summary["warnings"] = tidied.warnings
    summary["notes"] = tidied.notes
    if quarantine is not None:
        write_quarantine(checked.quarantine, quarantine)
        summary["quarantine"] = str(quarantine)
    frame = _with_setting(checked.accepted)
    ds = Dataset(rows_from_frame(frame), frame[LABEL].to_numpy(dtype=float), frame,
                 dict(checked.excluded), source.description, source.sha256, summary,
                 simulated="p_true" in frame.columns)
    if not len(ds.y):
        failures = "; ".join(f"{f['column']}: {f['rule']} failed on {f['rows']} row(s) "
                             f"({f['message']})" for f in summary["failures"][:5])
        raise UserError(f"{source.description}: no row can be learned from: "
                        f"{summary['rows_in']} rows read, {summary['rejected']} rejected, set "
                        f"aside: {_counts(checked.excluded)}" + (f". {failures}" if failures else ""))
    return ds, checked


def _counts(excluded: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in excluded.items() if v) or "none"


def require_outcomes(ds: Dataset, purpose: str, *, minimum: int = MIN_EVALUATION_OUTCOMES) -> None:
    """Refuse (:class:`UserError`) data without at least ``minimum`` rows of each outcome."""
    events = int(ds.y.sum())
    non_events = len(ds.y) - events
    if min(events, non_events) < minimum:
        only = (" (every outcome is 1: hip driver)" if not non_events
                else " (every outcome is 0: not the driver)" if not events else "")
        raise UserError(f"{ds.description}: {len(ds.y)} usable rows, {events} with "
                        f"{LABEL}=1 and {non_events} with {LABEL}=0{only}; {purpose} needs at "
                        f"least {minimum} of each")


def outcome_warning(ds: Dataset) -> str | None:
    """A sentence when ``ds`` has fewer than 100 events or non-events (Collins et al. 2016)."""
    events = int(ds.y.sum())
    fewest = min(events, len(ds.y) - events)
    if fewest >= RECOMMENDED_EVALUATION_OUTCOMES:
        return None
    return (f"only {fewest} {'events' if fewest == events else 'non-events'}: the confidence "
            f"intervals are wide; at least {RECOMMENDED_EVALUATION_OUTCOMES} of each are "
            "recommended for a validation (Collins et al. 2016, Stat Med 35:214)")


def load(spec: str | Path, *, quarantine: str | Path | None = None,
         columns: str | Path | Mapping | None = None) -> Dataset:
    """Read, validate and prepare training data from a file, NDJSON export or database URL.

    Raises :class:`~training.validation.DataRejected` (before any training) when the columns or
    units are wrong; rows that break a rule go to ``quarantine`` (CSV or Parquet, with a
    ``reason`` column) and are counted in ``Dataset.validation``.
    """
    ds, _ = from_source(read_source(spec), quarantine=quarantine, columns=columns)
    return ds


def quarantine_reasons(path: str | Path) -> pd.Series:
    """The ``reason`` column of a written quarantine file (for reports and tests)."""
    path = Path(path)
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    reasons: pd.Series = frame[REASON]
    return reasons
