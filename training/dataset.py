"""Training data: read a file in the contract's schema, keep the rows a model may learn from.

A training frame has one row per presenting complaint, the contract's record fields as columns
(``complaint`` instead of the ``complaints`` list) and the observed outcome in ``hip_driver``
(0/1). Rows of pain-free controls, rows without an outcome and rows with a red flag (those
patients are referred, never scored) are set aside, and the counts are reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cds.features import RED_FLAGS, ROWS
from cds.intake import rows_from_frame

LABEL = "hip_driver"
COMPLAINT = ROWS.row_column or "complaint"


@dataclass
class Dataset:
    """Model matrix, labels and the frame they came from (for subgroups and the ceiling)."""

    X: np.ndarray
    y: np.ndarray
    frame: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)


def read_frame(path: str | Path) -> pd.DataFrame:
    """Parquet or CSV, by extension."""
    path = Path(path)
    if path.suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise ValueError(f"{path}: expected a .parquet or .csv file")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare(frame: pd.DataFrame) -> Dataset:
    """Select trainable rows and build (X, y)."""
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
    kept = frame.loc[keep.to_numpy()].reset_index(drop=True)
    return Dataset(rows_from_frame(kept), kept[LABEL].to_numpy(dtype=float), kept, excluded)
