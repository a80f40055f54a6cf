"""Units written in a clinic's cells or headers, converted to the contract's unit with ``pint``.

The contract names each feature's unit in UCUM (``N.m/kg``, ``kg/m2``, ``deg``, ``mo``, ``a``,
``%``, ``{score}``); :func:`pint_unit` translates that to ``pint``. A unit written by a person
(``1.38 Nm/kg``, ``BMI (kg/m²)``, ``12 weeks``) is converted only when the conversion is
certain; otherwise :class:`UnitProblem` says why. The rules:

* the written unit must have the contract unit's dimension (``N·m`` for ``N·m/kg`` is refused:
  dividing by body mass is not a unit conversion);
* ``Nm`` is read as newton-metre, never as ``pint``'s "number-metre" or as nanometre: of the
  readings, only those with the contract's dimension are kept, and they must agree;
* dimensionless units convert only within their kind: angles between themselves (degree,
  radian), a percentage only from ``%``; a score (UCUM ``{...}``) takes no unit at all;
* a unit ``pint`` does not know is refused, never guessed.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["UnitProblem", "conversion_factor", "pint_unit", "split_value"]

_ANGLES = {"degree", "radian", "arcminute", "arcsecond", "turn", "gradian"}
_UCUM_ATOMS = {"a": "year", "mo": "month", "wk": "week", "d": "day", "deg": "degree",
               "%": "percent", "h": "hour", "min": "minute"}
_SUPERSCRIPTS = {"²": "**2", "³": "**3", "⁻¹": "**-1"}
_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+))\s*([^\d\s].*?)?\s*$")


class UnitProblem(ValueError):
    """A written unit that cannot be converted safely to the contract's unit (says why)."""


@lru_cache(maxsize=1)
def _registry() -> Any:
    import pint

    return pint.UnitRegistry()


def pint_unit(ucum: str | None) -> str | None:
    """The ``pint`` expression of a UCUM unit (``N.m/kg`` -> ``N*m/kg``); ``None`` for a score
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


@lru_cache(maxsize=256)
def conversion_factor(written: str, ucum: str | None) -> float:
    """Multiply a value written in ``written`` by this to get the contract's ``ucum`` unit.

    Raises :class:`UnitProblem` when the conversion is not certain (module docstring).
    """
    target = pint_unit(ucum)
    if target is None:
        raise UnitProblem(f"'{written}': this finding is a score without a unit")
    ureg = _registry()
    goal = ureg.parse_expression(target)
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
