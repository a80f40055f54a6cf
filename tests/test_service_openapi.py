"""The OpenAPI 3.1 document is accurate: schemathesis finds no server error and no response that
breaks the document (bounded examples per operation), and the record schema is the contract's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cds.features import record_json_schema
from service.openapi import document

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


class _CurrentApp:
    """A WSGI callable handing each request to the app of the running test: the document is
    loaded at import time (schemathesis needs it then), the app needs the tiny model fixture."""

    app: Flask | None = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


CURRENT = _CurrentApp()
schema = schemathesis.openapi.from_dict(document())
schema.app = CURRENT


@pytest.fixture(autouse=True)
def _serve(make_app: Callable[..., Flask]) -> Iterator[None]:
    CURRENT.app = make_app(BATCH_MAX=5)
    yield
    CURRENT.app = None


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_document(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


def test_record_schema_is_the_contracts() -> None:
    published = document()["components"]["schemas"]["PatientRecord"]
    contract = {k: v for k, v in record_json_schema().items() if k not in ("$schema", "$id")}
    assert published == contract


def test_every_route_of_the_app_is_documented(app: Flask) -> None:
    documented = {path.replace("{", "<").replace("}", ">") for path in document()["paths"]}
    # the clinician pages (blueprint ``ui``) are HTML for people, not part of the machine API
    routes = {r.rule for r in app.url_map.iter_rules()
              if r.endpoint != "static" and not r.endpoint.startswith("ui.")}
    assert routes - documented == set()
