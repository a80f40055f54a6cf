"""Units, one layer for the whole house: every value is converted into the contract's unit
(``Feature.ucum``), and UCUM is the one vocabulary.

Two callers, one registry:

* **UCUM codes** (the FHIR path, ``Observation.valueQuantity.code``): :func:`factor`. A table of
  exact conversions answers the common cases without importing anything; any other UCUM code is
  parsed by ``ucumvert`` (a maintained UCUM grammar on top of Pint, so UCUM's own definitions
  apply: ``mo`` is the mean Julian month, ``a`` the Julian year, ``[lbf_av].[ft_i]/kg`` a torque
  per body mass). Dimensionless targets (degrees, percent) convert only by the table: Pint sees
  no difference between an angle and a percentage. A unit of another dimension (a force in
  ``kgf`` or ``N`` for a torque per kg: the lever arm and body mass are unknown) is not
  convertible: ``None``.
* **units written by a person** in a clinic's cells or headers (``1.38 Nm/kg``, ``BMI (kg/m²)``,
  ``12 weeks``; :mod:`training.values`): :func:`conversion_factor`, converted only when the
  conversion is certain, otherwise :class:`UnitProblem` says why. The target is the contract's
  UCUM code, read by the same UCUM registry; the written text is read by that registry's Pint
  parser (which knows the UCUM atoms too: ``mo``, ``wk``). The rules:

  - the written unit must have the contract unit's dimension (``N·m`` for ``N·m/kg`` is refused:
    dividing by body mass is not a unit conversion);
  - ``Nm`` is read as newton-metre, never as Pint's "number-metre" or as nanometre: of the
    readings, only those with the contract's dimension are kept, and they must agree;
  - dimensionless units convert only within their kind: angles between themselves (degree,
    radian), a percentage only from ``%``; a score (UCUM ``{...}``) takes no unit at all;
  - a unit the registry does not know is refused, never guessed.

The registry takes seconds to build, so it is built once per process, on the first unit the
table does not know; a gunicorn master builds it before it forks (:func:`warm`,
``service/gunicorn_conf.py``), so workers never pay for it.
"""

from __future__ import annotations

import math
import re
import threading
from functools import cache, lru_cache
from typing import Any

__all__ = ["EXACT", "UnitProblem", "conversion_factor", "factor", "pint_unit", "split_value",
           "warm"]

# Exact conversions into the contract's unit: (contract UCUM, given UCUM) -> factor.
EXACT: dict[tuple[str, str], float] = {
    ("deg", "rad"): 180.0 / math.pi,
    ("mo", "a"): 12.0, ("mo", "wk"): 7 / 30.4375, ("mo", "d"): 1 / 30.4375,
    ("a", "mo"): 1 / 12.0,
    ("N.m/kg", "N.m.kg-1"): 1.0, ("kg/m2", "kg.m-2"): 1.0,
    # the dynamometer's inputs: force (standard gravity, CGPM 1901), lever arm, body mass
    ("N", "kgf"): 9.80665, ("kgf", "N"): 1 / 9.80665, ("m", "cm"): 0.01,
    ("kg", "[lb_av]"): 0.45359237,
}


_LOCK = threading.Lock()


@cache
def _build() -> Any:
    from ucumvert import PintUcumRegistry  # heavy (a grammar and a unit registry): lazily

    return PintUcumRegistry()


def _registry() -> Any:
    with _LOCK:  # built once per process, even when two requests need it first together
        return _build()


def warm() -> None:
    """Build the UCUM registry now (seconds): in a gunicorn master before it forks, so that no
    worker, and no first request with an unusual unit, pays for it."""
    _registry()


def factor(target: str, given: str) -> float | None:
    """The factor taking a value in UCUM ``given`` to UCUM ``target``, or ``None`` when ``given``
    is not UCUM, or measures something else (another dimension), or is an arbitrary unit.

    Asked once per value read: a pair the table does not answer is worked out by UCUM's parser
    once and remembered (:func:`_parsed_factor`), refusals too; a code longer than
    :data:`CACHED_CODE_MAX` (no UCUM code is) is parsed each time rather than kept."""
    if given == target:
        return 1.0
    if (target, given) in EXACT:
        return EXACT[(target, given)]
    if "{" in target or "{" in given or "[arb'U]" in given:
        return None  # annotations and arbitrary units carry no dimension to check
    if len(given) > CACHED_CODE_MAX or len(target) > CACHED_CODE_MAX:
        return _parse_factor(target, given)
    return _parsed_factor(target, given)


CACHED_CODE_MAX = 64
"""The longest UCUM code whose factor :func:`factor` remembers (a client's junk is not kept)."""


@lru_cache(maxsize=512)
def _parsed_factor(target: str, given: str) -> float | None:
    return _parse_factor(target, given)


def _parse_factor(target: str, given: str) -> float | None:
    """:func:`factor` by UCUM's parser: ``None`` for another dimension or a code it cannot read."""
    try:
        ureg = _registry()
        quantity = ureg.from_ucum(given)
        wanted = ureg.from_ucum(target)
        if quantity.dimensionality != wanted.dimensionality or wanted.dimensionless:
            return None  # angles, percent and counts are all dimensionless: only EXACT converts

        value = float(quantity.to(wanted.units).magnitude / wanted.magnitude)
    except Exception:  # ucumvert raises lark and pint errors alike for a code it cannot read
        return None
    return value if math.isfinite(value) and value > 0 else None


# ------------------------------------------------------------------ units written by a person
_ANGLES = {"degree", "radian", "arcminute", "arcsecond", "turn", "gradian"}
_UCUM_ATOMS = {"a": "year", "mo": "month", "wk": "week", "d": "day", "deg": "degree",
               "%": "percent", "h": "hour", "min": "minute"}
_SUPERSCRIPTS = {"²": "**2", "³": "**3", "⁻¹": "**-1"}
_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+))\s*([^\d\s].*?)?\s*$")


class UnitProblem(ValueError):
    """A written unit that cannot be converted safely to the contract's unit (says why)."""


def pint_unit(ucum: str | None) -> str | None:
    """The Pint expression of a UCUM unit (``N.m/kg`` -> ``N*m/kg``); ``None`` for a score
    or no unit (UCUM annotations ``{...}`` carry no physical unit)."""
    if not ucum or ucum.startswith("{"):
        return None
    if ucum in _UCUM_ATOMS:
        return _UCUM_ATOMS[ucum]
    text = re.sub(r"([A-Za-z])(\d)", r"\1**\2", ucum)
    return text.replace(".", "*")


def _readings(written: str) -> list[str]:
    text = written.strip()
    for sup, power in _SUPERSCRIPTS.items():
        text = text.replace(sup, power)
    text = text.replace("·", "*").replace("⋅", "*")
    text = re.sub(r"(?<=[A-Za-z])\s+(?=[A-Za-z])", "*", text)  # "N m/kg" -> "N*m/kg"
    text = re.sub(r"([A-Za-z])(\d)", r"\1**\2", text)  # "kg/m2" -> "kg/m**2"
    readings = [text]
    if re.search(r"(?<![A-Za-z])Nm(?![A-Za-z])", text):
        readings.append(re.sub(r"(?<![A-Za-z])Nm(?![A-Za-z])", "N*m", text))
    return readings


@lru_cache(maxsize=64)
def _contract_unit(ucum: str) -> Any:
    """The contract's unit as a quantity, read as UCUM (its Pint spelling if UCUM's grammar
    refuses it). Parsed once per unit: UCUM's Earley parser costs milliseconds a call."""
    ureg = _registry()
    try:
        return ureg.from_ucum(ucum)
    except Exception:  # ucumvert raises lark and pint errors alike
        return ureg.parse_expression(pint_unit(ucum))


def conversion_factor(written: str, ucum: str | None) -> float:
    """Multiply a value written in ``written`` by this to get the contract's ``ucum`` unit.

    Raises :class:`UnitProblem` when the conversion is not certain (module docstring). The
    answer for a pair, a factor or a refusal, is worked out once: a column repeats its unit in
    every cell, and a refusal is as costly to reach as a factor.
    """
    factor, problem = _conversion(written, ucum)
    if problem is not None:
        raise UnitProblem(problem)
    return factor


@lru_cache(maxsize=1024)
def _conversion(written: str, ucum: str | None) -> tuple[float, str | None]:
    try:
        return _convert(written, ucum), None
    except UnitProblem as e:
        return math.nan, str(e)


def _convert(written: str, ucum: str | None) -> float:
    if pint_unit(ucum) is None or ucum is None:
        raise UnitProblem(f"'{written}': this finding is a score without a unit")
    ureg = _registry()
    goal = _contract_unit(ucum)
    factors: set[float] = set()
    unknown = []
    for reading in _readings(written):
        try:
            quantity = ureg.parse_expression(reading)
        except Exception:  # pint raises several kinds for text it cannot read
            unknown.append(reading)
            continue
        if not hasattr(quantity, "dimensionality"):
            continue
        if quantity.dimensionality != goal.dimensionality:
            continue
        if goal.dimensionless:
            kind = {str(u) for u in dict(quantity.unit_items())}
            goal_kind = {str(u) for u in dict(goal.unit_items())}
            if not (kind == goal_kind or (kind and kind <= _ANGLES and goal_kind <= _ANGLES)):
                continue
        factors.add(round(float((1 * quantity).to(goal).magnitude), 12))
    if len(factors) == 1:
        return factors.pop()
    if len(factors) > 1:
        raise UnitProblem(f"'{written}': ambiguous (it reads as more than one unit)")
    if unknown and len(unknown) == len(_readings(written)):
        raise UnitProblem(f"'{written}': not a unit this knows")
    raise UnitProblem(f"'{written}': not convertible to {ucum}")


def split_value(cell: str) -> tuple[str, str | None] | None:
    """``"1,38 Nm/kg"`` -> ``("1.38", "Nm/kg")``; ``"12"`` -> ``("12", None)``; ``None`` when the
    cell does not start with a number. A decimal comma is read as a decimal point."""
    m = _NUMBER_UNIT.match(cell)
    if not m:
        return None
    return m.group(1).replace(",", "."), (m.group(2) or None)
