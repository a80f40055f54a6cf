"""A clinic's table -> the training schema's raw frame: names, values, duplicates, gaps.

Runs before validation (:mod:`training.validation`), so everything it cannot make certain is
still reported there by column and rule. In order:

1. **names** (:func:`training.columns.apply_names`): the mapping file, then certain renames;
2. **values** (:mod:`training.values`): categories, decimal commas and units (a unit that cannot
   be converted stops the run: :class:`~training.validation.DataRejected`);
3. **duplicates** (training only), by this rule: an exact duplicate row is kept once; rows with
   the same ``patient_id`` and complaint that differ are a conflict: with ``recorded_at`` the
   latest is kept (a correction supersedes, as in the service's store), without it every one of
   them is set aside (which is right cannot be told);
4. **findings absent from the whole file**: every clinical test (the contract's ``procedure``)
   none of whose columns is in the file is listed; one whose findings feed a derived model
   column (hip abductor strength: the finding this model is about) gets a loud warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from cds.features import FEATURES, Feature

from .columns import Mapping, apply_names, known_columns, suggest
from .schema import COMPLAINT, by_value, memo, training_columns
from .validation import REASON, DataRejected
from .values import category_values, numbers

__all__ = ["Tidied", "absent_findings", "tidy"]


@dataclass
class Tidied:
    """The tidied frame, rows set aside (with ``reason``), notes and warnings in words."""

    frame: pd.DataFrame
    set_aside: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)


def absent_findings(columns: set[str]) -> tuple[list[str], list[str]]:
    """(warnings, loud warnings) for clinical tests with no column at all in the file."""
    derived_inputs = {name for f in FEATURES if f.role == "derived" for name in f.derived_from}
    by_procedure: dict[str, list[str]] = {}
    for f in FEATURES:
        # a dynamometer's raw readings (force, lever arm, position) stand in for its torques:
        # their columns do not make the key finding present
        raw_reading = f.converts_to is not None or (f.role == "input" and f.norm is None)
        if f.procedure and f.role != "derived" and not raw_reading:
            by_procedure.setdefault(f.procedure, []).append(f.name)
    quiet, loud = [], []
    for procedure, names in by_procedure.items():
        if any(n in columns for n in names):
            continue
        text = f"no column of '{procedure}' ({', '.join(names)}) in the whole file"
        if derived_inputs & set(names):
            loud.append("WARNING: " + text + ": the model will be trained WITHOUT this key "
                        "finding and will never learn from it; map the column if the file has "
                        "it under another name (--columns), or do not train on this file")
        else:
            quiet.append(text + ": the model learns without it")
    # a finding no clinical test records (intake: BMI, pain, history; red-flag questions)
    for f in FEATURES:
        if (f.procedure is None and f.role in ("model", "red_flag") and f.name not in columns
                and f.name not in derived_inputs):
            quiet.append(f"no column '{f.name}' ({f.label}) in the whole file: "
                         + ("its red flag cannot be screened in this file" if f.role == "red_flag"
                            else "the model learns without it"))
    return quiet, loud


def _read_categories(column: pd.Series, f: Feature) -> tuple[pd.Series, int]:
    """The column with each cell read as the contract's value where it reads as one (else as
    written), as a categorical, and how many cells that changed; worked out once per distinct
    value."""
    def read(values: pd.Series) -> pd.Series:
        return category_values(values, f).where(lambda r: r.notna(), values)

    def changed(values: pd.Series) -> pd.Series:
        r = category_values(values, f)
        return r.notna() & (values.astype("string").str.strip() != r)

    return (by_value(column, read, categorical=True, remember=memo(f"read {f.name}")),
            int(by_value(column, changed, remember=memo(f"changed {f.name}")).sum()))


def _values(frame: pd.DataFrame, units: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    out = frame.copy(deep=False)  # copy-on-write: columns replaced below, the input untouched
    notes: list[str] = []
    problems: list[str] = []
    for name, f in training_columns().items():
        if name not in out.columns:
            continue
        column = out[name]
        if f.kind == "category" and not pd.api.types.is_numeric_dtype(column):
            out[name], changed = _read_categories(column, f)
            if changed:
                notes.append(f"{name}: {changed} value(s) read as the contract's "
                             f"({', '.join(f.allowed)})")
        elif f.kind in ("number", "integer"):
            converted, said, problem = numbers(column, f, units.get(name))
            if problem:
                problems.append(f"column '{name}': {problem}")
            else:
                out[name] = converted
                notes += said
    if problems:
        raise DataRejected(problems)
    return out, notes


def _duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int], list[str]]:
    exact = frame.duplicated(keep="first")
    kept = frame.loc[~exact]
    counts = {"exact_duplicate": int(exact.sum())}
    notes = [f"{int(exact.sum())} exact duplicate row(s) kept once"] if exact.any() else []
    empty = frame.iloc[0:0].assign(**{REASON: pd.Series(dtype=object)})
    if "patient_id" not in kept.columns or COMPLAINT not in kept.columns:
        return kept, empty, counts, notes
    key = kept[["patient_id", COMPLAINT]].astype("string")
    identified = key.notna().all(axis=1)
    conflict = identified & key.duplicated(keep=False)
    if not conflict.any():
        return kept, empty, counts, notes
    if "recorded_at" in kept.columns:
        order = kept.assign(_at=kept["recorded_at"].astype("string")).loc[conflict]
        latest = order.sort_values("_at", kind="stable").groupby(
            [key.loc[conflict, "patient_id"], key.loc[conflict, COMPLAINT]]).tail(1).index
        superseded = conflict & ~kept.index.isin(latest)
        reason = "duplicate patient_id and complaint: superseded by a later recorded_at"
    else:
        superseded = conflict
        reason = "duplicate patient_id and complaint with different values: which is right " \
                 "cannot be told"
    counts["conflicting_duplicate"] = int(superseded.sum())
    notes.append(f"{int(superseded.sum())} row(s) set aside: {reason}")
    aside = kept.loc[superseded].assign(**{REASON: reason})
    return kept.loc[~superseded], aside, counts, notes


def tidy(frame: pd.DataFrame, mapping: Mapping | None = None, *, dedupe: bool = True) -> Tidied:
    """Names, values, duplicates and absent findings (module docstring)."""
    renamed, units, notes = apply_names(frame, mapping)
    known = known_columns()
    unknown = [str(c) for c in renamed.columns if str(c) not in known]
    hints = {s.source: s.target for s in suggest(renamed[unknown])} if unknown else {}
    warnings = [f"column '{c}' is not in the contract and is ignored"
                + (f"; did you mean '{hints[c]}'? (map it with --columns)" if c in hints else "")
                for c in unknown]
    missing = [c for c in training_columns() if c not in renamed.columns]
    quiet, loud = absent_findings({str(c) for c in renamed.columns})
    valued, value_notes = _values(renamed, units)
    notes += value_notes
    if dedupe:
        valued, aside, counts, dup_notes = _duplicates(valued)
        notes += dup_notes
    else:
        aside, counts = valued.iloc[0:0].assign(**{REASON: pd.Series(dtype=object)}), {}
    if missing:
        notes.append("contract columns absent from the file (not recorded): " + ", ".join(missing))
    return Tidied(valued, aside, notes, loud + warnings + quiet, counts)
