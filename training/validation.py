"""Validate a training frame: every failure at once, bad rows to quarantine, nothing silent.

Two kinds of problem, handled differently:

* **The file is wrong** (a required column missing, a column that is almost a contract name, a
  column in another unit): :class:`DataRejected` lists every such problem and the run stops
  before any training.
* **Some rows are wrong** (a value out of range, an unknown category, text in a number column):
  those rows go to the quarantine with a ``reason`` naming every ``column: rule`` they broke; the
  rest go on. Rows that are valid but cannot be learned from (no complaint, no outcome, a red
  flag) are set aside too, with their reason, so every input row is accounted for.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors as pa_errors

from cds.errors import UserError
from cds.features import RED_FLAGS

from .schema import (
    COMPLAINT,
    LABEL,
    PASSTHROUGH,
    REQUIRED_COLUMNS,
    canonical,
    training_columns,
    training_schema,
)

REASON = "reason"


class DataRejected(UserError):
    """The data (for training, evaluation, scoring or monitoring) cannot be used as given;
    every problem is listed."""

    status = 422
    code = "invalid-data"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("data rejected, nothing used:\n  " + "\n  ".join(problems))


@dataclass
class Validated:
    """Rows to learn from, rows set aside (with ``reason``) and the counts."""

    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    failures: list[dict[str, Any]] = field(default_factory=list)  # column, rule, rows, message
    excluded: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    rows_in: int = 0

    def summary(self) -> dict[str, Any]:
        """Counts for the run's report and the model's metadata."""
        return {"rows_in": self.rows_in, "accepted": len(self.accepted),
                "rejected": int(self.rows_in - len(self.accepted) - sum(self.excluded.values())),
                "excluded": dict(self.excluded),
                "failures": [{k: v for k, v in f.items()} for f in self.failures],
                "ignored_columns": list(self.ignored_columns)}

    def report_lines(self) -> list[str]:
        """The counts in words, one line each (printed by ``cds train``)."""
        return validation_lines(self.summary())


def validation_lines(s: dict[str, Any]) -> list[str]:
    """A validation summary (:meth:`Validated.summary`) in words, one line each."""
    lines = list(s.get("warnings", []))
    lines += [f"{s['rows_in']} rows read: {s['accepted']} accepted, {s['rejected']} rejected "
             "(validation), " + ", ".join(f"{v} {k.replace('_', ' ')}"
                                           for k, v in s["excluded"].items()) + " set aside"]
    lines += [f"  {f['column']}: {f['rule']} failed on {f['rows']} row(s) ({f['message']})"
              for f in s["failures"]]
    lines += [f"  {note}" for note in s.get("notes", [])]
    if s["ignored_columns"]:
        lines.append("  ignored columns (not in the contract): " + ", ".join(s["ignored_columns"]))
    if s.get("quarantine"):
        lines.append(f"  rows set aside written to {s['quarantine']}")
    return lines


def check_columns(frame: pd.DataFrame) -> list[str]:
    """Problems with the file's columns themselves (empty when the columns are usable).

    A required column missing, or an unknown column that looks like a contract column which is
    absent (a close spelling, or one name a prefix of the other: ``bmi_kg`` for ``bmi_kg_m2``):
    such a column is most likely the contract's in another unit or under another name, and
    silently ignoring it would train without it. Other unknown columns are ignored and listed.
    """
    from .columns import suggest

    known = set(training_columns()) | {LABEL, *PASSTHROUGH}
    unknown = [c for c in map(str, frame.columns) if c not in known]
    hints = {s.target: s.source for s in suggest(frame[unknown])} if unknown else {}
    problems = [f"column '{c}' is required and missing"
                + (f"; did you mean '{hints[c]}'? (map it with --columns, or rename it)"
                   if c in hints else "")
                for c in REQUIRED_COLUMNS if c not in frame.columns]
    for c in frame.columns:
        if str(c) in known:
            continue
        close = difflib.get_close_matches(str(c), sorted(known), n=1, cutoff=0.8) or sorted(
            k for k in known if len(str(c)) >= 3 and (str(c).startswith(k) or k.startswith(str(c))))
        if close and close[0] not in frame.columns:
            problems.append(f"column '{c}' is not in the contract; did you mean '{close[0]}'? "
                            "(contract names carry the unit; rename or convert the column)")
    return problems


def _failure_table(frame: pd.DataFrame) -> pd.DataFrame:
    """pandera's failure cases (column, check, index) for the whole frame, lazily collected."""
    try:
        training_schema().validate(frame, lazy=True, inplace=True)  # no dtype to coerce: no copy
    except pa_errors.SchemaErrors as e:
        cases: pd.DataFrame = e.failure_cases
        return cases
    return pd.DataFrame(columns=["column", "check", "index", "failure_case"])


def _rules() -> dict[tuple[str, int], tuple[str, str]]:
    """(column, check number) -> (rule name, message), to read pandera's failure cases."""
    return {(name, i): (str(check.name), str(check.error))
            for name, col in training_schema().columns.items()
            for i, check in enumerate(col.checks)}


def exclusion_reasons(frame: pd.DataFrame) -> pd.Series:
    """Why a valid canonical row cannot be learned from ('' when it can)."""
    reason = pd.Series("", index=frame.index, dtype=object)
    flagged = np.zeros(len(frame), dtype=bool)
    for f in RED_FLAGS:
        if f.name in frame.columns:
            flagged |= frame[f.name].fillna(0).to_numpy(dtype=float) > 0
    reason[frame[LABEL].isna().to_numpy()] = "excluded: no_outcome"
    reason[flagged] = "excluded: red_flag"
    reason[frame[COMPLAINT].isna().to_numpy()] = "excluded: no_complaint_or_control"
    return reason


def row_reasons(frame: pd.DataFrame, *, require_label: bool = True
                ) -> tuple[pd.Series, list[dict[str, Any]]]:
    """Per row, every ``column: rule`` it breaks ('' when none), and the failure counts.

    Raises :class:`DataRejected` when the columns themselves are wrong (missing, misnamed, in
    another unit). ``require_label=False`` for scoring, where there is no outcome yet.
    """
    problems = [p for p in check_columns(frame) if require_label or f"'{LABEL}'" not in p]
    cases = _failure_table(frame)
    rules = _rules()
    if len(cases):
        cases = cases.assign(rule=[rules[(str(c), int(n))][0] for c, n in
                                   zip(cases["column"], cases["check_number"], strict=True)])
        for _, case in cases[cases["index"].isna()].iterrows():
            problems.append(f"column '{case['column']}': {case['rule']} - {case['check']}")
    if problems:
        raise DataRejected(problems)
    failures: list[dict[str, Any]] = []
    reason = pd.Series("", index=frame.index, dtype=object)
    if len(cases):
        cases = cases.dropna(subset=["index"]).astype({"index": int})
        for (column, rule), group in cases.groupby(["column", "rule"], sort=False):
            rows = group["index"].unique()
            failures.append({"column": str(column), "rule": str(rule), "rows": len(rows),
                             "message": str(group["check"].iloc[0])})
            tag = f"{column}: {rule}"
            previous = reason.loc[rows].to_numpy()
            reason.loc[rows] = pd.Series([f"{r}; {tag}" if r else tag for r in previous],
                                         index=rows)
    return reason, failures


def validate(frame: pd.DataFrame) -> Validated:
    """Check columns (raise :class:`DataRejected`), then every value; split accepted from set aside."""
    frame = frame.reset_index(drop=True)
    reason, failures = row_reasons(frame)
    known = set(training_columns()) | {LABEL, *PASSTHROUGH}
    bad = (reason != "").to_numpy()
    clean = canonical(frame.loc[~bad])
    excluded = exclusion_reasons(clean)
    keep = (excluded == "").to_numpy()
    counts = excluded[~keep].str.removeprefix("excluded: ").value_counts()
    set_aside = pd.concat([frame.loc[bad].assign(**{REASON: reason[bad]}),
                           frame.loc[clean.index[~keep]].assign(**{REASON: excluded[~keep]})])
    return Validated(accepted=clean.loc[keep].reset_index(drop=True),
                     quarantine=set_aside.sort_index(),
                     failures=failures,
                     excluded={k: int(counts.get(k, 0)) for k in
                               ("no_complaint_or_control", "no_outcome", "red_flag")},
                     ignored_columns=[str(c) for c in frame.columns if str(c) not in known],
                     rows_in=len(frame))


def write_quarantine(quarantine: pd.DataFrame, path: str | Path) -> Path:
    """Rows set aside, as CSV or Parquet by extension, with their ``reason`` column."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        quarantine.to_csv(path, index_label="source_row")
    else:
        # raw columns may mix text and numbers: keep them as text so nothing is lost
        mixed = {c: "string" for c in quarantine.columns if quarantine[c].dtype == object}
        quarantine.astype(mixed).to_parquet(path, index=True)
    return path
