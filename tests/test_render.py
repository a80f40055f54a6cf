"""The renderers: each a function of the typed Assessment; the JSON Schema derived from the type."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

import cds
from cds.assessment import Assessment, ComplaintResult, Factor, NextAssessment, NotRecorded
from cds.render import as_text, cards, json_body, risk_assessment
from cds.render.body import FIELD_SCHEMA, json_schemas, object_schema
from cds.render.handout import handout
from tests.conftest import load_example

TYPES = (Factor, NotRecorded, NextAssessment, ComplaintResult, Assessment)
EXAMPLES = ("runner_pfp_hip_driven", "red_flag_trauma_swelling", "intake_only_pfp_and_lbp")


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
def test_the_schema_properties_are_the_types_fields_in_order(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    schema = json_schemas()[cls.__name__]
    assert list(schema["properties"]) == names and schema["required"] == names


def test_a_field_added_to_the_type_appears_in_the_schema() -> None:
    @dataclasses.dataclass(frozen=True)
    class WithConfidence(NextAssessment):
        confidence: float | None = None

    schema = object_schema(WithConfidence)
    assert schema["properties"]["confidence"] == {"type": ["number", "null"]}
    assert "confidence" in schema["required"]


def test_every_field_described_by_hand_is_a_field_of_the_type() -> None:
    for cls, extras in FIELD_SCHEMA.items():
        assert set(extras) - {""} <= {f.name for f in dataclasses.fields(cls)}, cls.__name__


@pytest.mark.parametrize("name", EXAMPLES)
def test_from_dict_inverts_to_dict(tiny_model: cds.Model, name: str) -> None:
    assessment = cds.assess(load_example(name), model=tiny_model)
    assert Assessment.from_dict(assessment.to_dict()) == assessment


def test_from_dict_reads_a_result_stored_before_starting_points(tiny_model: cds.Model) -> None:
    result = cds.assess(load_example("runner_pfp_hip_driven"), model=tiny_model).to_dict()
    del result["referral"]
    for r in result["results"]:
        for key in ("starting_point", "starting_probability", "not_recorded"):
            r.pop(key)
        for f in r["factors"]:
            del f["probability_change"], f["points"]
    [r] = Assessment.from_dict(result).results
    assert r.starting_point == r.base_value and math.isnan(r.starting_probability)
    assert r.not_recorded is None and r.factors[0].points == 0


def _order(procedure: str) -> dict[str, Any]:
    return {"text": procedure}


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_renderer_is_a_function_of_the_typed_assessment(tiny_model: cds.Model,
                                                              name: str) -> None:
    assessment = cds.assess(load_example(name), model=tiny_model)
    refer = assessment.action == "refer"
    assert json_body(assessment) == assessment.to_dict()
    assert ("RED FLAG" in as_text(assessment)) is refer
    resource = risk_assessment(assessment, rid="a1")
    assert resource["resourceType"] == "RiskAssessment" and resource["id"] == "a1"
    shown, rows = cards(assessment, "a1", "https://cds.example.org", order_code=_order)
    assert len(shown) == len(rows) == (1 if refer else len(assessment.results))
    assert handout(assessment).sections[-1][0] == "About this sheet"
