"""The FHIR reader's plain-dict path (what a parsed JSON body holds, read in one pass) and its
general path (any ``Mapping``) read the same resources to the same record, basis, set-aside
notes and errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any

import pytest

from cds.errors import InvalidRecord
from cds.fhir import record_from_fhir
from tests.service_fixtures import observation, quantity, runner_prefetch, searchset

TODAY = date(2026, 3, 1)


def as_mappings(value: Any) -> Any:
    """``value`` with every JSON object a read-only Mapping that is not a dict."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: as_mappings(v) for k, v in value.items()})
    if isinstance(value, list):
        return [as_mappings(v) for v in value]
    return value


def read_both(resources: Any, lenient: bool) -> tuple[Any, Any]:
    out = []
    for given in (resources, as_mappings(resources)):
        try:
            fhir = record_from_fhir(given, today=TODAY, lenient=lenient)
            out.append((fhir.record, fhir.basis, fhir.patient_id,
                        [(e.field, e.rule, e.message) for e in fhir.set_aside]))
        except InvalidRecord as e:
            out.append([(x.field, x.rule, x.message) for x in e.errors])
    return out[0], out[1]


def _messy() -> list[Any]:
    """The runner's prefetch, the Patient last, with values to set aside and a nested Bundle."""
    prefetch = runner_prefetch(n_extra=5)
    extra = [
        observation("hip_abduction_left_nm_per_kg", id="t-kgf", **quantity(15.0, "kgf")),
        observation("hip_abduction_right_nm_per_kg", id="t-lb",
                    **quantity(1.0, "[lbf_av].[ft_i]/kg")),
        observation("pain_nrs", id="p-high", valueInteger=50),
        observation("bmi_kg_m2", id="b-bare", valueDecimal=22.0),
        observation("trendelenburg_sign", id="t-code", valueCodeableConcept={"coding": [
            {"system": "http://snomed.info/sct", "code": "373067005"}]}),
        observation("single_leg_squat_pelvic_drop_deg", id="d-rad",
                    effectivePeriod={"end": "2027-01-01"}, **quantity(0.1, "rad")),
        {**observation("pain_nrs", valueInteger=9), "status": "entered-in-error"},
    ]
    nested = {"resourceType": "Bundle", "entry": [
        {"resource": [searchset(*extra[:3]), extra[3]]},
        {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}}]}
    patient = prefetch.pop("patient")
    return [*prefetch.values(), nested, searchset(*extra[4:]), patient]


@pytest.mark.parametrize("lenient", [True, False])
@pytest.mark.parametrize("name", ["runner", "messy", "another patient"])
def test_plain_dicts_and_other_mappings_read_alike(name: str, lenient: bool) -> None:
    resources: Any = {
        "runner": lambda: list(runner_prefetch(n_extra=40).values()),
        "messy": _messy,
        "another patient": lambda: [
            *runner_prefetch().values(),
            {**observation("pain_nrs", valueInteger=3), "subject": {"reference": "Patient/p2"}}],
    }[name]()
    plain, general = read_both(resources, lenient)
    assert plain == general
    if name == "messy" and lenient:
        record, basis, _, set_aside = plain
        assert record["single_leg_squat_pelvic_drop_deg"] == pytest.approx(5.729578)
        assert "Observation/t-lb" in basis
        assert {note[0] for note in set_aside} >= {"hip_abduction_left_nm_per_kg", "pain_nrs",
                                                    "bmi_kg_m2"}
