"""One units layer (:mod:`cds.units`): the FHIR path's UCUM codes and a site file's written units
are read by one registry, with UCUM the one vocabulary, and agree on every conversion both know.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import training.columns
import training.values
from cds import units

# (contract UCUM, unit as a person or a FHIR server writes it) known to both callers
BOTH = [("mo", "a"), ("mo", "wk"), ("mo", "d"), ("a", "mo"), ("deg", "rad"), ("N", "kgf"),
        ("m", "cm")]


@pytest.mark.parametrize(("target", "given"), BOTH)
def test_a_written_unit_and_its_ucum_code_convert_alike(target: str, given: str) -> None:
    assert units.conversion_factor(given, target) == pytest.approx(units.factor(target, given),
                                                                   rel=1e-12)


@pytest.mark.parametrize(("written", "target", "expected"),
                         [("wk", "mo", 7 / 30.4375), ("mo", "a", 1 / 12)])
def test_a_site_file_may_write_a_ucum_code(written: str, target: str, expected: float) -> None:
    """UCUM's atoms (``wk``, ``mo``) are units a site file may write in a header: the one
    vocabulary is read on both paths (a bare Pint registry knew neither)."""
    assert units.conversion_factor(written, target) == pytest.approx(expected, rel=1e-12)


def test_training_reads_units_from_the_one_layer() -> None:
    """No re-export in between (issue 15): training imports :mod:`cds.units` itself."""
    assert not (Path(training.values.__file__).parent / "units.py").exists()
    for module in (training.values, training.columns):
        assert module.conversion_factor is units.conversion_factor
        assert module.UnitProblem is units.UnitProblem
        assert module.split_value is units.split_value


def test_a_refused_unit_is_worked_out_once_per_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """A column repeats its unit in every cell: a refusal, as costly as a factor (UCUM's parser),
    is remembered too (scoring 800 cells once parsed UCUM 29k times)."""
    calls: list[str] = []
    real = units._convert

    def counting(written: str, ucum: str | None) -> float:
        calls.append(written)
        return real(written, ucum)

    monkeypatch.setattr(units, "_convert", counting)
    units._conversion.cache_clear()
    for _ in range(3):
        with pytest.raises(units.UnitProblem, match="not a unit this knows"):
            units.conversion_factor("furlongs-per-fortnight-xyz", "N.m/kg")
        assert units.conversion_factor("Nm/kg", "N.m/kg") == pytest.approx(1.0)
    assert calls == ["furlongs-per-fortnight-xyz", "Nm/kg"]


def test_a_ucum_conversion_is_parsed_once_per_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Observation of a heavy patient repeats its unit: a factor outside the exact table
    (UCUM's parser, milliseconds) is worked out once per pair, a refusal too."""
    calls: list[int] = []
    real = units._registry

    def counting() -> object:
        calls.append(1)
        return real()

    monkeypatch.setattr(units, "_registry", counting)
    cached = getattr(units, "_parsed_factor", None)
    if cached is not None:
        cached.cache_clear()
    for _ in range(3):
        assert units.factor("N.m/kg", "[lbf_av].[ft_i]/kg") == pytest.approx(1.3558179483314)
        assert units.factor("N.m/kg", "N") is None  # a force is not a torque per kg
    assert len(calls) == 2
