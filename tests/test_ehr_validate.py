"""Independent validation (issue 14): every FHIR resource the service emits parses and validates
with ``fhir.resources`` (R4B models on pydantic 2: structure, cardinality, required elements,
primitive formats, choice types, no unknown element). R4B is the release fhir.resources still
ships beside R5; for the resources we emit it matches R4 (4.0.1) element for element."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from flask import Flask

from tests.test_ehr_resolve import _resources, emitted


def _validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_every_emitted_resource_type_validates(app: Flask) -> None:
    docs = emitted(app)
    top = [r for doc in docs for r in _resources(doc)]
    kinds = {r["resourceType"] for r in top}
    assert {"RiskAssessment", "CodeSystem", "Questionnaire", "ValueSet", "CapabilityStatement",
            "ServiceRequest", "OperationOutcome", "Bundle"} <= kinds
    for r in top:
        _validate(r)


def test_each_local_code_system_validates(app: Flask) -> None:
    bundle = app.test_client().get("/fhir/CodeSystem").get_json()
    _validate(bundle)
    assert bundle["total"] >= 11


def test_the_validator_catches_a_broken_resource() -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError):
        _validate({"resourceType": "RiskAssessment", "status": "final",
                   "subject": {"reference": "Patient/p1"}, "prediction": [
                       {"probabilityDecimal": "high"}]})
    with pytest.raises(ValidationError):
        _validate({"resourceType": "CodeSystem", "status": "active", "content": "complete",
                   "unknownElement": 1})


@pytest.mark.parametrize("name", ["fhir/transaction-bundle.json", "fhir/questionnaire-response.json"])
def test_fhir_examples_validate(name: str) -> None:
    import json
    from pathlib import Path
    _validate(json.loads((Path(__file__).resolve().parents[1] / "examples" / name).read_text()))
