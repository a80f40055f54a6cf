"""Units written in a clinic's cells or headers: the house's one units layer is
:mod:`cds.units` (UCUM the one vocabulary, one registry for the FHIR path and for site files);
this module names what training reads from it."""

from __future__ import annotations

from cds.units import UnitProblem, conversion_factor, pint_unit, split_value

__all__ = ["UnitProblem", "conversion_factor", "pint_unit", "split_value"]
