"""A clinic's column names -> the contract's: a mapping file, safe renames, and suggestions.

A **mapping file** (``--columns mapping.yaml``; ``cds columns suggest FILE --out`` writes one)::

    version: 1
    columns:            # the file's column: the contract's column
      Age: age_years
      Gender: sex
      outcome: hip_driver
    units:              # optional: the unit a column is written in (UCUM or plain)
      hip_abd_L: Nm/kg

Without a mapping, the only renames made are certain ones: the same name up to case, spaces,
hyphens and dots (``Age_Years``, ``age-years``), and a unit in brackets after such a name
(``BMI_kg_m2 (kg/m²)``; the unit is converted, :mod:`cds.units`). A unit in brackets after
a mapped column's name is taken too (``BMI (kg/m2): bmi_kg_m2``). Everything else is suggested,
never applied: by name similarity (:mod:`difflib`, against the contract's names and labels)
and by values (numbers inside a feature's valid range, yes/no values for a yes/no finding,
values that read as a category's allowed values).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cds.errors import UserError
from cds.features import Feature
from cds.units import UnitProblem, conversion_factor, split_value

from .schema import LABEL, PASSTHROUGH, as_boolean, as_number, training_columns
from .values import category_values

__all__ = ["Mapping", "Suggestion", "apply_names", "known_columns", "load_mapping", "suggest",
           "write_mapping"]

MAPPING_VERSION = 1
_HEADER_UNIT = re.compile(r"^(.*?)\s*[\(\[]\s*([^\)\]]+?)\s*[\)\]]\s*$")
SUGGEST_CUTOFF = 0.6
# what sites call the observed outcome (the outcome is not a contract feature, so it has no label)
OUTCOME_NAMES = ("outcome", "label", "target", "diagnosis_confirmed", "hip_driver_confirmed")


@dataclass
class Mapping:
    """Column renames and the units columns are written in (the file's column names)."""

    columns: dict[str, str]
    units: dict[str, str]
    source: str = ""


def known_columns() -> dict[str, Feature | None]:
    """Every column a data file may carry: the contract's, the outcome and pass-through ones."""
    out: dict[str, Feature | None] = dict(training_columns())
    out[LABEL] = None
    out.update(dict.fromkeys(PASSTHROUGH))
    return out


def normalise(name: str) -> str:
    """``"Age-Years "`` -> ``"age_years"`` (case, spaces, hyphens and dots do not matter)."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file (module docstring); a mistake is a :class:`UserError`."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise UserError(f"{path}: no such mapping file") from e
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not YAML ({str(e).splitlines()[0]})") from e
    if not isinstance(data, dict) or not isinstance(data.get("columns", {}), dict) \
            or not isinstance(data.get("units", {}), dict):
        raise UserError(f"{path}: a mapping file has 'columns:' (file column: contract column) "
                        "and optionally 'units:' (file column: unit)")
    known = known_columns()
    columns = {str(k): str(v) for k, v in (data.get("columns") or {}).items()}
    problems = []
    for source, target in columns.items():
        if target not in known:
            close = difflib.get_close_matches(target, list(known), n=1)
            problems.append(f"'{source}: {target}': '{target}' is not a contract column"
                            + (f"; did you mean '{close[0]}'?" if close else ""))
    targets = list(columns.values())
    problems += [f"'{t}' is the target of more than one column" for t in sorted(set(targets))
                 if targets.count(t) > 1]
    if problems:
        raise UserError(f"{path}: " + "; ".join(problems))
    units = {str(k): str(v) for k, v in (data.get("units") or {}).items()}
    return Mapping(columns, units, str(path))


def split_header_unit(name: str) -> tuple[str, str | None]:
    """``"BMI (kg/m2)"`` -> ``("BMI", "kg/m2")``; a name without brackets is returned as is."""
    m = _HEADER_UNIT.match(name)
    return (m.group(1), m.group(2)) if m and m.group(1) else (name, None)


def apply_names(frame: pd.DataFrame, mapping: Mapping | None = None
                ) -> tuple[pd.DataFrame, dict[str, str], list[str]]:
    """Rename columns by the mapping and by the certain rules (module docstring).

    Returns the renamed frame, the unit each renamed column is written in (from its header or
    the mapping) and one note per rename.
    """
    known = known_columns()
    by_normal = {normalise(k): k for k in known}
    renames: dict[str, str] = {}
    units: dict[str, str] = {}
    notes: list[str] = []
    for column in map(str, frame.columns):
        if mapping and column in mapping.columns:
            renames[column] = mapping.columns[column]
            header_unit = split_header_unit(column)[1]
            if column in mapping.units or header_unit:
                units[mapping.columns[column]] = mapping.units.get(column) or str(header_unit)
            continue
        if column in known:
            continue
        bare, unit = split_header_unit(column)
        target = bare if bare in known else by_normal.get(normalise(bare))
        if target is not None:
            renames[column] = target
            if unit:
                units[target] = unit
    if mapping:
        missing = sorted(set(mapping.columns) - set(map(str, frame.columns)))
        if missing:
            notes.append(f"mapping {mapping.source}: column(s) not in the file: {', '.join(missing)}")
        units.update({c: u for c, u in mapping.units.items() if c in known})
    targets = list(renames.values()) + [c for c in map(str, frame.columns) if c not in renames]
    clashes = sorted({t for t in targets if targets.count(t) > 1 and t in known})
    if clashes:
        raise UserError("more than one column would become " + ", ".join(
            f"'{t}' ({', '.join(c for c in map(str, frame.columns) if renames.get(c, c) == t)})"
            for t in clashes) + "; map only one of them")
    notes += [f"column '{s}' read as '{t}'" + (f" (unit {units[t]})" if t in units else "")
              for s, t in renames.items() if s != t]
    return frame.rename(columns=renames), units, notes


@dataclass(frozen=True)
class Suggestion:
    """A contract column a file column may be, with how sure and why."""

    source: str
    target: str
    score: float
    why: str


def _abbreviates(short: list[str], long: list[str]) -> bool:
    """Whether each token of ``short`` starts a token of ``long``, in order, the first at the
    start (``hip_abd_l`` abbreviates ``hip_abduction_left_nm_per_kg``)."""
    if len(short) < 2 or not long or not long[0].startswith(short[0]):
        return False
    j = 0
    for token in short:
        while j < len(long) and not long[j].startswith(token):
            j += 1
        if j == len(long):
            return False
        j += 1
    return True


def _name_score(source: str, target: str, f: Feature | None) -> float:
    a = normalise(split_header_unit(source)[0])
    names = [normalise(target)] + ([normalise(f.label)] if f is not None else [])
    if target == LABEL:
        names += list(OUTCOME_NAMES)
    best = max(difflib.SequenceMatcher(None, a, n).ratio() for n in names)
    tokens = normalise(target).split("_")
    if a and (a == tokens[0] or a in tokens or a.replace("_", "") == "".join(tokens[:2])):
        best = max(best, 0.75)  # "age" for age_years, "bmi" for bmi_kg_m2
    if _abbreviates(a.split("_"), tokens):
        best = max(best, 0.8)
    return best


def _as_numbers(values: pd.Series, f: Feature) -> pd.Series:
    """Numbers of a column for judging its fit: a unit after a number must convert."""
    if pd.api.types.is_numeric_dtype(values):
        return as_number(values)

    def read(cell: object) -> float:
        parsed = split_value(str(cell))
        if parsed is None:
            return float("nan")
        number, unit = parsed
        try:
            return float(number) * (conversion_factor(unit, f.ucum) if unit else 1.0)
        except UnitProblem:
            return float("nan")

    return values.map(read).astype(float)


def _values_fit(values: pd.Series, f: Feature | None, target: str) -> bool | None:
    """Whether the values could be this column's (``None`` when there is nothing to judge)."""
    v = values.dropna()
    v = v.iloc[:: max(1, len(v) // 2000)]  # a spread sample judges a column as well as all of it
    v = v[v.astype(str).str.strip() != ""]
    if v.empty:
        return None
    if f is None:
        return bool(as_boolean(v).notna().mean() > 0.95) if target == LABEL else None
    if f.kind == "boolean":
        return bool(as_boolean(v).notna().mean() > 0.95)
    if f.kind == "category":
        return bool(category_values(v, f).notna().mean() > 0.95)
    x = _as_numbers(v, f)
    if x.notna().mean() < 0.95:
        return False
    lo = f.minimum if f.minimum is not None else float("-inf")
    hi = f.maximum if f.maximum is not None else float("inf")
    return bool(x.dropna().between(lo, hi).mean() > 0.95)


def suggest(frame: pd.DataFrame, *, exclude: set[str] | None = None) -> list[Suggestion]:
    """For each file column that is not a contract column, the best contract column not in the
    file, by name and values (a value misfit vetoes; a fit adds), at most one column each."""
    known = known_columns()
    present = {str(c) for c in frame.columns} | (exclude or set())
    candidates: list[Suggestion] = []
    for column in map(str, frame.columns):
        if column in known:
            continue
        for target, f in known.items():
            if target in present:
                continue
            score = _name_score(column, target, f)
            fit = _values_fit(frame[column], f, target)
            if fit is False:
                continue
            why = f"name {score:.2f}"
            if fit:
                # a category's own values (F/M for sex) say more than a number in range
                score += 0.45 if f is not None and f.kind == "category" else 0.15
                why += ", values fit"
            if score >= SUGGEST_CUTOFF:
                candidates.append(Suggestion(column, target, round(score, 3), why))
    chosen: list[Suggestion] = []
    used: set[str] = set()
    for s in sorted(candidates, key=lambda s: -s.score):
        if s.source not in used and s.target not in {c.target for c in chosen}:
            chosen.append(s)
            used.add(s.source)
    return sorted(chosen, key=lambda s: s.source)


def write_mapping(suggestions: list[Suggestion], path: str | Path, *,
                  unmatched: list[str] | None = None) -> Path:
    """A mapping file from suggestions, each with its reason as a comment, to review."""
    lines = [f"version: {MAPPING_VERSION}", "# review every line: suggestions, not certainties",
             "columns:"]
    lines += [f"  {_yaml_key(s.source)}: {s.target}  # {s.why}" for s in suggestions]
    lines += [f"  # {_yaml_key(c)}: ?  (no suggestion)" for c in unmatched or []]
    lines += ["units: {}", ""]
    path = Path(path)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _yaml_key(name: str) -> str:
    import json

    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ .-]*", name) else json.dumps(name)


def describe(suggestions: list[Suggestion]) -> dict[str, Any]:
    """Suggestions as plain data (``--json``)."""
    return {s.source: {"target": s.target, "score": s.score, "why": s.why} for s in suggestions}
