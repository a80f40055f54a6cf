"""The training-data schema, derived from the feature contract (never restated), as pandera.

A training frame has one row per presenting complaint: the contract's record fields as columns,
``complaint`` in place of the ``complaints`` list and the observed outcome ``hip_driver`` (0/1).
Every check runs on the raw column (strings from a CSV, floats from Parquet), so a value that is
not a number is reported as a ``type`` failure rather than silently becoming NaN. Rule names
match :class:`cds.errors.FieldError` (``type``, ``enum``, ``integer``, ``minimum``, ``maximum``,
``required``), plus the column-level ``unit`` rule below.

``unit`` (whole column, at least :data:`UNIT_MIN_VALUES` values): a column is taken to be in
another unit when most of its values fall outside the contract's range, or when its median or
spread is far from the contract's reference range (median outside ``[lo - 2w, hi + 2w]`` or
interquartile range outside ``[w/20, 20w]``, ``w = hi - lo``). This catches radians for degrees
and N·m for N·m/kg; it cannot catch a unit that differs by a small factor, nor one in a column
without a reference range whose values stay within the contract's limits (symptom duration in
days rather than months mostly does). A unit failure stops the run: a column in the wrong unit
is not a few bad rows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from cds.features import ROWS, Feature, record_fields

LABEL = "hip_driver"
COMPLAINT = ROWS.row_column or "complaint"
REQUIRED_COLUMNS: tuple[str, ...] = (COMPLAINT, LABEL, *(f.name for f in record_fields()
                                                        if f.required and f.role != "rows"))
# Columns a training file may carry beyond the contract: identifiers, the care setting (for
# subgroups) and what the simulator records about its own truth (for the ceiling).
PASSTHROUGH: tuple[str, ...] = ("patient_id", "care_setting", "is_control", "weak",
                                "weakness_severity", "alt_cause", "quadriceps_weak",
                                "gluteal_tendinopathy",
                                "hip_driver_true", "p_true", "assessment_id", "recorded_at")
CARE_SETTINGS: tuple[str, ...] = ("intake", "exam", "movement")
UNIT_MIN_VALUES = 50
UNIT_OUTSIDE_SHARE = 0.5
_BOOL_TEXT = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "y": 1.0, "n": 0.0,
              "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}
_REFERENCE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:-|to)\s*(-?\d+(?:\.\d+)?)\s*$")


MEMO_VALUES = 1024  # distinct values up to which a reading is remembered (categories, answers)
_MEMOS: dict[str, dict[tuple[Any, ...], pd.Series]] = {}


def memo(reading: str) -> dict[tuple[Any, ...], pd.Series]:
    """The remembered results of one reading (its name says what it reads and by which rule),
    for :func:`by_value`: a batch's chunks and files repeat the same categories and answers, so
    each distinct set is read once per process, not once per chunk."""
    found = _MEMOS.setdefault(reading, {})
    if len(found) >= 64:  # bounded: a reading of ever new values keeps only the latest
        found.clear()
    return found


def _memo_key(dtype: Any, values: Any) -> tuple[Any, ...]:
    """A key for distinct values that tells 1, 1.0 and True apart (equal to a hash table)."""
    return (str(dtype), *((type(v).__name__, v) for v in values))


def by_value(s: pd.Series, fn: Callable[[pd.Series], pd.Series], *,
             categorical: bool = False,
             remember: dict[tuple[Any, ...], pd.Series] | None = None) -> pd.Series:
    """``fn(s)`` for an element-wise ``fn``, computed once per distinct value of a text or
    categorical column and spread to every row by the column's codes (a column of a million
    cells holds a handful of categories or yes/no answers). ``fn`` sees the distinct values in
    the column's own dtype, so it reads them exactly as it would read the whole column. Numbers
    and object columns holding anything but text go to ``fn`` whole. ``categorical``: the
    result as a ``pd.Categorical`` of the values read (the next reader works on its codes).
    ``remember``: a :func:`memo` of ``fn``'s results by distinct values (``fn`` must then
    depend on nothing else)."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return fn(s)
    key: tuple[Any, ...] | None = None
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        n = len(s.cat.categories)
        if remember is not None and n <= MEMO_VALUES:
            key = _memo_key(s.dtype.categories.dtype, s.dtype.categories)
        distinct = pd.Series(pd.Categorical.from_codes([*range(n), -1], dtype=s.dtype))
    else:
        if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in ("string",
                                                                                 "empty"):
            return fn(s)  # 1, 1.0 and True factorise as one value: read each cell as written
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
        n = len(uniques)
        if remember is not None and n <= MEMO_VALUES:
            key = _memo_key(s.dtype, uniques)
        distinct = pd.Series(uniques, dtype=s.dtype).reindex(range(n + 1))  # + a missing value
    read = remember.get(key) if remember is not None and key is not None else None
    if read is None:
        read = fn(distinct)
        if remember is not None and key is not None:
            remember[key] = read
    # a missing cell (code -1) takes the last result, the missing value's
    take = np.where(codes < 0, n, codes)
    if categorical:
        read_codes, values = pd.factorize(read, use_na_sentinel=True)
        return pd.Series(pd.Categorical.from_codes(read_codes[take], categories=values),
                         index=s.index, name=s.name, copy=False)
    if isinstance(read.dtype, np.dtype):  # bool or float: a plain numpy gather
        return pd.Series(read.to_numpy()[take], index=s.index, name=s.name, copy=False)
    return pd.Series(read.array.take(take), index=s.index, name=s.name, dtype=read.dtype,
                     copy=False)


def as_number(s: pd.Series) -> pd.Series:
    """Numeric view of a raw column (booleans as 0/1); anything unreadable becomes NaN."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(float)
    return by_value(s, lambda v: pd.to_numeric(v, errors="coerce").astype(float),
                    remember=memo("number"))


def as_boolean(s: pd.Series) -> pd.Series:
    """0.0/1.0 view of a raw yes/no column (true/false, yes/no, 1/0); anything else NaN."""
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        x = s.to_numpy(dtype=float, na_value=np.nan)
        return pd.Series(np.where((x == 0.0) | (x == 1.0), x, np.nan), index=s.index,
                         name=s.name, copy=False)
    return by_value(s, lambda v: v.astype("string").str.strip().str.lower().map(_BOOL_TEXT)
                    .astype(float), remember=memo("yes/no"))


def as_category(s: pd.Series, allowed: tuple[str, ...]) -> pd.Series:
    """A categorical over the contract's ``allowed`` values (unknown values become NaN)."""
    def read(v: pd.Series) -> pd.Series:
        text = v.astype("string").str.strip()
        known = text.where(text.isin(allowed))  # unknown values become NaN (module docstring)
        return pd.Series(pd.Categorical(known, categories=list(allowed)), index=v.index)

    return by_value(s, read, remember=memo(f"category {allowed}"))


def reference_range(f: Feature) -> tuple[float, float] | None:
    """The contract's reference range as numbers (``"1-9"``, ``"0 to 6"``), if it has one; a
    strength finding with a sex- and age-specific norm spans its norm table's 10th-90th
    percentiles over every age and both sexes."""
    if f.norm is not None:
        from cds.norms import NORMS
        from cds.norms import reference_range as norm_range

        ages = [a[0] for a in NORMS[f.norm].anchors]
        spans = [norm_range(f.norm, sex, age) for sex in ("female", "male") for age in ages]
        return min(lo for lo, _ in spans), max(hi for _, hi in spans)
    m = _REFERENCE.match(f.reference or "")
    return (float(m.group(1)), float(m.group(2))) if m else None


def unit_plausible(f: Feature, s: pd.Series) -> bool:
    """Whether a numeric column looks like it is in the contract's unit (module docstring)."""
    x = _numbers(s)
    x = x[~np.isnan(x)]
    if len(x) < UNIT_MIN_VALUES:
        return True
    lo = f.minimum if f.minimum is not None else -np.inf
    hi = f.maximum if f.maximum is not None else np.inf
    if float(((x < lo) | (x > hi)).mean()) > UNIT_OUTSIDE_SHARE:
        return False
    ref = reference_range(f)
    if ref is None:
        return True
    lo, hi = ref
    width = hi - lo
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    iqr = q3 - q1
    return bool(lo - 2 * width <= median <= hi + 2 * width
                and (iqr == 0 or width / 20 <= iqr <= 20 * width))


def _is_number(s: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def _numbers(s: pd.Series) -> np.ndarray:
    """:func:`as_number` as a float array (NaN: not recorded, or not a number)."""
    if _is_number(s):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return as_number(s).to_numpy(dtype=float, na_value=np.nan)


def _recorded(s: pd.Series) -> pd.Series:
    """Whether a value was recorded: not null, and for text (categories included) not blank."""
    if _is_number(s):
        return s.notna()
    return by_value(s, lambda v: v.notna() & (v.astype("string").str.strip() != ""),
                    remember=memo("recorded"))


def _rule(fn: Callable[[pd.Series], Any], name: str, message: str, *,
          numbers_pass: bool = False) -> pa.Check:
    """An element-wise rule: passes where the value is not recorded or ``fn`` holds (``fn``: a
    boolean Series or array, in the column's order). ``numbers_pass``: the rule holds for every
    value of a column of numbers, decided by its dtype (no cell is read)."""
    def check(s: pd.Series) -> bool | pd.Series:
        if numbers_pass and _is_number(s):
            return True
        recorded = _recorded(s).to_numpy(dtype=bool)
        return pd.Series(~recorded | np.asarray(fn(s), dtype=bool), index=s.index, copy=False)

    return pa.Check(check, name=name, error=message, ignore_na=False)


def _whole(s: pd.Series) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # infinity % 1 is NaN: not a whole number's failure
        whole: np.ndarray = ~(_numbers(s) % 1 > 0)
    return whole


def _checks(f: Feature, column: str) -> list[pa.Check]:
    label = f.label
    if f.kind == "boolean":
        return [_rule(lambda s: ~np.isnan(as_boolean(s).to_numpy()), "type",
                      f"{label}: yes/no (1/0, true/false)")]
    if f.kind == "category":
        allowed = set(f.allowed)
        return [_rule(lambda s: by_value(s, lambda v: v.astype("string").str.strip()
                                         .isin(allowed), remember=memo(f"enum {f.allowed}")),
                      "enum",
                      f"{label}: one of {', '.join(f.allowed)}")]
    unit = f" {f.unit}" if f.unit else ""
    checks = [_rule(lambda s: ~np.isnan(_numbers(s)), "type", f"{label}: a number",
                    numbers_pass=True)]
    if f.kind == "integer":
        checks.append(_rule(_whole, "integer", f"{label}: whole number"))
    if f.minimum is not None:
        low = f.minimum
        checks.append(_rule(lambda s: ~(_numbers(s) < low), "minimum",
                            f"{label}: at least {low:g}{unit}"))
    if f.maximum is not None:
        high = f.maximum
        checks.append(_rule(lambda s: ~(_numbers(s) > high), "maximum",
                            f"{label}: at most {high:g}{unit}"))
    # ignore_na=False: unit_plausible skips missing values itself (no copy of the column)
    checks.append(pa.Check(lambda s: unit_plausible(f, s), name="unit", ignore_na=False,
                           error=f"{label}: values look like another unit; expected {f.unit or f.ucum}"))
    return checks


def _required(label: str) -> pa.Check:
    return pa.Check(_recorded, name="required", error=f"{label}: required", ignore_na=False)


def training_columns() -> dict[str, Feature]:
    """Training-frame column -> the contract feature that declares it (``complaint``: the rows)."""
    out = {COMPLAINT: ROWS}
    out.update({f.name: f for f in record_fields() if f.role != "rows"})
    return out


@functools.cache
def training_schema() -> pa.DataFrameSchema:
    """The pandera schema of a training frame, built from :data:`cds.features.FEATURES`
    (once per process: pandera copies every column when a schema is built).

    Columns are optional here (a clinic without movement analysis has no kinematics columns);
    which columns must be present is checked before validation (:data:`REQUIRED_COLUMNS`).
    No dtype is imposed: the checks read raw values, so every failure is reported by column and
    rule rather than as one dtype error per column.
    """
    columns: dict[str, pa.Column] = {}
    for name, f in training_columns().items():
        checks = _checks(f, name)
        if f.required and name != COMPLAINT:
            checks.insert(0, _required(f.label))
        columns[name] = pa.Column(checks=checks, nullable=True, required=False)
    columns[LABEL] = pa.Column(checks=[_rule(lambda s: as_boolean(s).notna(), "type",
                                             "hip_driver: outcome 1 (driver) or 0 (not)")],
                               nullable=True, required=False)
    columns["care_setting"] = pa.Column(checks=[_rule(
        lambda s: by_value(s, lambda v: v.astype("string").str.strip().isin(CARE_SETTINGS),
                           remember=memo("care_setting")),
        "enum",
        f"care_setting: one of {', '.join(CARE_SETTINGS)}")], nullable=True, required=False)
    return pa.DataFrameSchema(columns, strict=False, name="gmed training data")


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Validated raw rows -> canonical dtypes: numbers and yes/no as float64 (NaN when not
    recorded), categories as ``pd.Categorical`` over the contract's values."""
    out = frame.copy(deep=False)  # copy-on-write: columns replaced below, the input untouched
    for name, f in training_columns().items():
        if name not in out.columns:
            continue
        if f.kind == "category":
            out[name] = as_category(out[name], f.allowed)
        elif f.kind == "boolean":
            out[name] = as_boolean(out[name])
        else:
            out[name] = as_number(out[name])
    if LABEL in out.columns:
        out[LABEL] = as_boolean(out[LABEL])
    if "care_setting" in out.columns:
        out["care_setting"] = as_category(out["care_setting"], CARE_SETTINGS)
    return out


def infer_care_setting(frame: pd.DataFrame) -> pd.Series:
    """The care setting a row was recorded in, from which contract groups it has findings for
    (``movement`` if any movement finding, else ``exam`` if any exam finding, else ``intake``)."""
    setting = pd.Series("intake", index=frame.index, dtype=object)
    for group in ("exam", "movement"):
        names = [f.name for f in record_fields() if f.group == group and f.name in frame.columns]
        if names:
            setting[frame[names].notna().any(axis=1).to_numpy()] = group
    return pd.Series(pd.Categorical(setting, categories=list(CARE_SETTINGS)), index=frame.index)


def describe_rules() -> list[dict[str, Any]]:
    """Every column and rule of the schema (for ``--help`` text and the report)."""
    return [{"column": name, "rules": [c.name for c in col.checks]}
            for name, col in training_schema().columns.items()]
