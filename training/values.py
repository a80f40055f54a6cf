"""Values as a clinic writes them -> the contract's values, by stated rules, never guessed.

* **categories**: the contract's value up to case and surrounding spaces (``Female``), its
  label (``Low back pain``), or a prefix that starts exactly one allowed value (``F``/``M`` for
  sex, ``L``/``R``/``B`` for the side); anything else stays as written and the schema reports it;
* **numbers**: a decimal comma (``1,38``) is a decimal point; a unit after the number
  (``1.38 Nm/kg``) or in the header is converted to the contract's unit (:mod:`cds.units`);
  a unit that cannot be converted safely stops the run for that column (a column written in
  an unknown unit is not a few bad rows);
* **yes/no**: ``yes/no``, ``y/n``, ``true/false``, ``1/0`` in any case (read by the schema).
"""

from __future__ import annotations

import pandas as pd

from cds.features import Feature
from cds.units import UnitProblem, conversion_factor, split_value

__all__ = ["category_values", "numbers"]


def category_values(values: pd.Series, f: Feature) -> pd.Series:
    """The contract's allowed value each cell reads as (module docstring); NaN where none."""
    lookup: dict[str, str] = {}
    for value, label in zip(f.allowed, f.allowed_labels or f.allowed, strict=False):
        lookup[value.lower()] = value
        lookup[label.strip().lower()] = value
    text = values.astype("string").str.strip().str.lower()

    def read(cell: object) -> str | None:
        if cell is pd.NA or cell is None:
            return None
        key = str(cell)
        if key in lookup:
            return lookup[key]
        starts = [v for v in f.allowed if v.lower().startswith(key)] if key else []
        return starts[0] if len(starts) == 1 else None

    # each distinct cell is read once (a column holds few), then looked up for every row
    read_as = {cell: read(cell) for cell in text.dropna().unique()}
    return text.map(read_as).astype(object).where(text.notna(), None)


def numbers(values: pd.Series, f: Feature, header_unit: str | None = None
            ) -> tuple[pd.Series, list[str], str | None]:
    """Numbers of a raw column in the contract's unit.

    Returns the converted column (cells that are not numbers are kept as written, for the
    schema to report), notes on what was converted, and a problem (why a unit cannot be
    converted) or ``None``.
    """
    notes: list[str] = []
    factor_header = 1.0
    if header_unit:
        try:
            factor_header = conversion_factor(header_unit, f.ucum)
        except UnitProblem as e:
            return values, notes, f"header unit {e}"
        if factor_header != 1.0:
            notes.append(f"{f.name}: converted from {header_unit} (x{factor_header:.6g})")
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return (values.astype(float) * factor_header if factor_header != 1.0 else values), notes, None
    out = values.astype(object).copy()
    units_seen: dict[str, int] = {}
    commas = 0
    for i, cell in values.items():
        if not isinstance(cell, str):
            continue
        parsed = split_value(cell)
        if parsed is None:
            continue
        number, unit = parsed
        if "," in cell.split(unit or "\0")[0]:
            commas += 1
        factor = factor_header
        if unit:
            try:
                factor = conversion_factor(unit, f.ucum)
            except UnitProblem as e:
                return values, notes, f"value '{cell[:40]}': unit {e}"
            units_seen[unit] = units_seen.get(unit, 0) + 1
        out.at[i] = float(number) * factor
    if commas:
        notes.append(f"{f.name}: {commas} decimal comma(s) read as decimal points")
    for unit, count in units_seen.items():
        factor = conversion_factor(unit, f.ucum)
        notes.append(f"{f.name}: {count} value(s) written in {unit}"
                     + (f", converted to {f.ucum} (x{factor:.6g})" if factor != 1.0 else ""))
    return out, notes, None
