"""The JSON body of an Assessment (``application/json``): the public Assessment contract."""

from __future__ import annotations

from typing import Any

from ..assessment import Assessment


def json_body(assessment: Assessment) -> dict[str, Any]:
    """The Assessment as plain JSON-ready data (its fields, nested results and factors)."""
    return assessment.to_dict()
