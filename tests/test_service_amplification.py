"""Small bodies cannot buy large answers or long work: the errors reported are bounded (a few
per field, a few dozen in all, the rest counted), arrays have a maximum, and the resources the
service fetches for a CDS Hooks call count against the request's resource cap."""

from __future__ import annotations

import gzip
import json
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from flask import Flask

from cds.features import BY_NAME
from cds.fhir import QUESTIONNAIRE_URL
from service.ehr.prefetch import _code_list
from tests import test_service_prefetch_fetch as loopback
from tests.service_fixtures import hook_call, observation, quantity, runner_prefetch, searchset
from tests.test_service_api import load_example

servers = loopback.servers  # the loopback FHIR server fixture
_send = loopback._send

HOOK = "/cds-services/gmed-driver"
FHIR = "application/fhir+json"
AUTH = {"access_token": "secret-token", "token_type": "Bearer"}
SMALL = 16 << 10  # bytes: a 422 that lists LISTED errors fits in this
PER_FIELD = 3  # cds.errors.MAX_ERRORS_PER_FIELD (pinned in tests/test_validate.py)
LISTED = 41  # 2 * cds.errors.MAX_ERRORS + 1: the kept errors, one cut line per field, one more


def _runner() -> dict[str, Any]:
    return load_example("runner_pfp_hip_driven")


def _questionnaire(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "questionnaire": QUESTIONNAIRE_URL,
            "status": "completed", "item": items}


HOSTILE: dict[str, Callable[[], Any]] = {
    # 200,000 bad complaints: once a 422 of 200,000 errors
    "complaint items": lambda: {**_runner(), "complaints": [0] * 200_000},
    # 40,000 keys not in the contract: one error each
    "unknown keys": lambda: {**_runner(), **{f"k{i}": 0 for i in range(40_000)}},
    # 1,000 Observations (the resource cap) in a unit that cannot be converted: one field
    "unconvertible observations": lambda: [observation("bmi_kg_m2", **quantity(22.0, "[lb_av]"))
                                           for _ in range(1000)],
    # one QuestionnaireResponse, 15,000 answers to questions that are not ours
    "foreign questions": lambda: _questionnaire(
        [{"linkId": f"q{i}", "answer": [{"valueString": "x"}]} for i in range(15_000)]),
    # one item, 15,000 answers naming no known complaint
    "unknown complaint codes": lambda: _questionnaire(
        [{"linkId": "complaints", "answer": [{"valueCoding": {"code": f"c{i}"}}
                                             for i in range(15_000)]}]),
}


@pytest.mark.parametrize("accept", ["application/json", FHIR])
@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_body_gets_a_small_422_saying_how_many_more(app: Flask, name: str,
                                                               accept: str) -> None:
    """Sent gzipped (the red team's 1.1 KB body became a 58.6 MB 422): the answer lists at most
    PER_FIELD errors of a field and LISTED lines in all, under 16 KiB, and counts the rest."""
    body = gzip.compress(json.dumps(HOSTILE[name]()).encode())
    response = app.test_client().post(
        "/v1/assessments", data=body, content_type="application/json",
        headers={"Content-Encoding": "gzip", "Accept": accept})
    assert response.status_code == 422
    assert len(response.data) < SMALL
    if accept == FHIR:
        listed = [(i["expression"][0], i["details"]["coding"][0]["code"], i["diagnostics"])
                  for i in response.get_json()["issue"]]
    else:
        listed = [(e["field"], e["rule"], e["message"])
                  for e in response.get_json()["error"]["errors"]]
    assert len(listed) <= LISTED
    if name != "complaint items":  # that one is a single maxItems error
        cut = [message for _, rule, message in listed if rule == "maxErrors"]
        assert cut and any(" more errors" in m for m in cut)
    fields = [field.split("[")[0] for field, rule, _ in listed if rule != "maxErrors"]
    assert max(fields.count(f) for f in fields) <= PER_FIELD


def test_more_complaints_than_there_are_is_one_max_items_error(app: Flask) -> None:
    response = app.test_client().post("/v1/assessments",
                                      json={**_runner(), "complaints": ["pfp"] * 5000})
    assert response.status_code == 422
    [error] = response.get_json()["error"]["errors"]
    assert (error["field"], error["rule"]) == ("complaints", "maxItems")
    published = app.test_client().get("/v1/features").get_json()["record_schema"]
    assert published["properties"]["complaints"]["maxItems"] == len(BY_NAME["complaints"].allowed)


@pytest.mark.parametrize("body", [[0] * 200_000,
                                  {"resourceType": "Bundle", "entry": [0] * 200_000}])
def test_fhir_input_with_more_items_than_the_resource_cap_is_413(app: Flask, body: Any) -> None:
    """``[0,0,...]`` holds no resource, but a million items: refused on their number."""
    response = app.test_client().post("/v1/assessments", json=body)
    assert response.status_code == 413
    [error] = response.get_json()["error"]["errors"]
    assert error["rule"] == "maxItems" and "FHIR_MAX_RESOURCES" in error["message"]


def test_a_prefetched_bundle_with_too_many_entries_is_413(app: Flask) -> None:
    prefetch = {**runner_prefetch(),
                "observations": {"resourceType": "Bundle", "entry": [0] * 5000}}
    response = app.test_client().post(HOOK, json=hook_call(prefetch=prefetch))
    assert response.status_code == 413
    [issue] = response.get_json()["issue"]
    assert issue["code"] == "too-costly" and issue["expression"] == ["prefetch.observations.entry"]


def test_batch_errors_are_bounded_per_record(make_app: Callable[..., Flask]) -> None:
    """100 records, each with 500 unknown keys: each record's result lists at most LISTED
    errors (before, 50,000 errors in all)."""
    records = [{**_runner(), **{f"k{i}": 0 for i in range(500)}} for _ in range(100)]
    response = make_app().test_client().post("/v1/assessments/batch", json={"records": records})
    assert response.status_code == 200  # nothing valid, nothing stored
    results = response.get_json()["results"]
    assert all(len(r["errors"]) <= LISTED for r in results)
    assert len(response.data) < 100 * 2 * SMALL // 10


# ---------------------------------------------------------------------- fetched resources


def _paged_server(per_page: int, pages: int) -> Callable[[BaseHTTPRequestHandler], None]:
    """The Observation query answers ``pages`` pages of ``per_page`` Observations, each linking
    to the next; the Patient and Condition queries answer as the runner's prefetch; any other
    is 404."""
    prefetch = runner_prefetch()
    # the other Observation queries' first codes: the patient-reported, movement and red-flag
    # Observations' own keys are unavailable here (the exam query carries the pages)
    own_keys = [urllib.parse.quote(_code_list(key=k).split(",")[0].split("|")[1])
                for k in ("observations-intake", "observations-movement", "observations-safety")]

    def answer(handler: BaseHTTPRequestHandler) -> None:
        base = f"http://127.0.0.1:{handler.server.server_address[1]}/fhir"
        path = handler.path
        if path.startswith("/fhir/Patient/"):
            resource = prefetch["patient"]
        elif path.startswith("/fhir/Condition"):
            resource = prefetch["conditions"]
        elif not path.startswith("/fhir/Observation"):
            _send(handler, 404)  # no intake: that key is unavailable, nothing counted
            return
        elif any(code in path for code in own_keys):  # another Observation key: unavailable
            _send(handler, 404)
            return
        else:
            page = int(path.rsplit("page=", 1)[1]) if "page=" in path else 1
            resource = searchset(*[observation("pain_nrs", valueInteger=5)] * per_page)
            if page < pages:
                resource["link"] = [{"relation": "next",
                                     "url": f"{base}/Observation?page={page + 1}"}]
        _send(handler, 200, json.dumps(resource).encode(), {"Content-Type": FHIR})
    return answer


def _call_fetching(make_app: Callable[..., Flask], servers: Any, per_page: int, pages: int,
                   cap: int) -> tuple[Any, Any]:
    server = servers(_paged_server(per_page, pages))
    app = make_app(FHIR_MAX_RESOURCES=cap, FHIR_SERVER_ALLOWLIST=[server.base])
    prefetch = runner_prefetch()
    call = hook_call(prefetch={"patient": prefetch["patient"],
                               "conditions": prefetch["conditions"]},
                     fhirServer=server.base, fhirAuthorization=AUTH)
    return app.test_client().post(HOOK, json=call), server


def test_fetched_resources_past_the_cap_end_the_fetch_with_413(
        make_app: Callable[..., Flask], servers: Any) -> None:
    """Pages of 400 Observations, five of them linked: with a cap of 1000 the third page
    passes it; the fourth is never asked for. The other queries, fetched at the same time,
    ask for their first page at most (before: all fetched, 2,000 resources read for a 1 KB
    call)."""
    response, server = _call_fetching(make_app, servers, per_page=400, pages=5, cap=1000)
    assert response.status_code == 413
    [issue] = response.get_json()["issue"]
    assert issue["code"] == "too-costly" and issue["expression"] == ["prefetch.observations"]
    assert "FHIR_MAX_RESOURCES" in issue["diagnostics"] and "1000" in issue["diagnostics"]
    asked = [path for path, _ in server.requests]
    later_pages = [p for p in asked if p.startswith("/fhir/Observation?page=")]
    assert sorted(later_pages) == ["/fhir/Observation?page=2", "/fhir/Observation?page=3"]
    first_pages = [p for p in asked if p not in later_pages]
    assert len(first_pages) == len(set(first_pages)) <= 5  # each fetched query once at most


def test_the_requests_own_resources_and_the_fetched_share_one_cap(
        make_app: Callable[..., Flask], servers: Any) -> None:
    """The call carries 3 resources (the Patient, a searchset Bundle and its Condition) and the
    server sends a Bundle of 8 Observations (9 resources; the intake query finds nothing):
    12 fit a cap of 12, not a cap of 11."""
    at_cap, _ = _call_fetching(make_app, servers, per_page=8, pages=1, cap=12)
    assert at_cap.status_code == 200, at_cap.get_json()
    over, _ = _call_fetching(make_app, servers, per_page=8, pages=1, cap=11)
    assert over.status_code == 413
