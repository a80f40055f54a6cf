"""UCUM unit conversion into the contract's units (``Feature.ucum``).

A table of exact conversions answers the common cases without importing anything; any other
UCUM code is parsed by ``ucumvert`` (a maintained UCUM grammar on top of Pint, so UCUM's own
definitions apply: ``mo`` is the mean Julian month, ``a`` the Julian year, ``[lbf_av].[ft_i]/kg``
a torque per body mass). Dimensionless targets (degrees, percent) convert only by the table:
Pint sees no difference between an angle and a percentage. Its registry takes seconds to build,
so it is built once, on the first unit the table does not know. A unit of another dimension
(a force in ``kgf`` or ``N`` for a torque per kg: the lever arm and body mass are unknown) is
not convertible: ``None``.
"""

from __future__ import annotations

import math
import threading
from functools import cache
from typing import Any

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
    """Build the UCUM registry now (seconds), e.g. in a thread as a worker starts, so that the
    first request with an unusual unit does not pay for it."""
    _registry()


def factor(target: str, given: str) -> float | None:
    """The factor taking a value in UCUM ``given`` to UCUM ``target``, or ``None`` when ``given``
    is not UCUM, or measures something else (another dimension), or is an arbitrary unit."""
    if given == target:
        return 1.0
    if (target, given) in EXACT:
        return EXACT[(target, given)]
    if "{" in target or "{" in given or "[arb'U]" in given:
        return None  # annotations and arbitrary units carry no dimension to check
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
