"""Fuzzing the CDS Hooks request parser (``POST /cds-services/{id}`` and its feedback route).

A valid call (the realistic runner's prefetch) is broken in one to four places: ``hook``,
``hookInstance``, ``context`` and its ``patientId``/``userId``/``encounterId`` (types, empty,
too long, half a surrogate pair), ``fhirServer``/``fhirAuthorization`` combinations, prefetch keys
missing, null or of the wrong type, unknown top-level keys. An oracle written here from the
CDS Hooks 2.0 rules predicts the answer, and the property is that the service gives it:

* something malformed -> 400 with an OperationOutcome whose first issue names one of the fields
  that were broken;
* well formed but the Patient or the complaints are neither prefetched nor fetchable -> 412
  naming exactly those prefetch keys;
* otherwise 200 with cards valid under the published Card schema (none when no complaint is
  known); never a 500.

Case counts and the statuses seen go to ``out/reliability/fuzz.json``.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from service.routes.openapi import SCHEMAS
from tests.fuzz_report import counted
from tests.service_fixtures import runner_prefetch

CARD = Draft202012Validator(SCHEMAS["Card"])
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))
SERVICES = {"gmed-driver": ("patient-view", ("patientId", "userId")),
            "gmed-driver-encounter": ("encounter-start", ("patientId", "userId", "encounterId"))}
PREFETCH_KEYS = ("patient", "observations", "conditions", "intake")
HALF_SURROGATE = "p\ud800"

not_text = st.one_of(st.none(), st.integers(), st.booleans(),
                     st.floats(allow_nan=False, allow_infinity=False),
                     st.lists(st.text(max_size=3), max_size=2), st.just({"a": 1}))
bad_strings = st.one_of(not_text, st.just(""), st.just(HALF_SURROGATE))
not_a_resource = st.one_of(st.text(max_size=8), st.integers(), st.booleans(),
                           st.lists(st.integers(), max_size=2), st.just({}),
                           st.just({"resourceType": 5}), st.just({"entry": []}))


@dataclass
class Case:
    """A call, the service it goes to, and what the oracle expects of it."""

    service: str
    call: dict[str, Any]
    malformed: set[str] = field(default_factory=set)  # fields a 400 may name


@st.composite
def calls(draw: st.DrawFn) -> Case:
    service = draw(st.sampled_from(sorted(SERVICES)))
    hook, context_keys = SERVICES[service]
    context: dict[str, Any] = {"patientId": "p1", "userId": "Practitioner/dr-1", "encounterId": "e1"}
    if service == "gmed-driver" and draw(st.booleans()):
        del context["encounterId"]
    case = Case(service, {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context,
                          "prefetch": runner_prefetch()})
    call = case.call
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(("hook", "hookInstance", "context", "context-key", "auth",
                                     "auth", "prefetch", "prefetch-key", "prefetch-key",
                                     "prefetch-key", "extra")))
        if what == "hook":
            wrong = draw(st.one_of(st.sampled_from(["patient-view", "encounter-start", "order-sign",
                                                    "PATIENT-VIEW", ""]), not_text))
            call["hook"] = wrong
            case.malformed.discard("hook")
            if wrong != hook:
                case.malformed.add("hook")
        elif what == "hookInstance":
            call["hookInstance"] = draw(st.one_of(bad_strings, st.text(min_size=129, max_size=140)))
            case.malformed.add("hookInstance")
        elif what == "context":
            call["context"] = draw(st.one_of(not_text.filter(lambda v: not isinstance(v, dict)),
                                             st.text(max_size=5)))
            case.malformed.add("context")
        elif what == "context-key" and isinstance(call["context"], dict):
            key = draw(st.sampled_from(("patientId", "userId", "encounterId")))
            call["context"][key] = draw(st.one_of(bad_strings, st.text(min_size=257, max_size=260)))
            if key in context_keys:
                case.malformed.add(f"context.{key}")
        elif what == "auth":
            auth_case(draw, case)
        elif what == "prefetch":
            call["prefetch"] = draw(st.one_of(st.none(), st.text(max_size=4), st.integers(),
                                              st.lists(st.integers(), max_size=2)))
            case.malformed = {m for m in case.malformed if not m.startswith("prefetch")}
            if call["prefetch"] is not None:
                case.malformed.add("prefetch")
        elif what == "prefetch-key" and isinstance(call.get("prefetch"), dict):
            key = draw(st.sampled_from(PREFETCH_KEYS))
            how = draw(st.sampled_from(("drop", "null", "wrong")))
            case.malformed.discard(f"prefetch.{key}")
            if how == "drop":
                call["prefetch"].pop(key, None)
            elif how == "null":
                call["prefetch"][key] = None
            else:
                call["prefetch"][key] = draw(not_a_resource)
                case.malformed.add(f"prefetch.{key}")
        elif what == "extra":
            call[draw(st.sampled_from(["extension", "fhirServerX", "x"]))] = draw(not_text)
    return case


def auth_case(draw: st.DrawFn, case: Case) -> None:
    """fhirServer / fhirAuthorization: each alone, both, either malformed. The allowlist is
    empty, so a well-formed pair changes nothing (no fetch)."""
    call = case.call
    for key in ("fhirAuthorization", "fhirServer"):
        call.pop(key, None)
        case.malformed.discard(key)
    token = {"access_token": "opaque", "token_type": "Bearer", "expires_in": 300,
             "scope": "patient/*.read", "subject": "cds-service"}
    auth = draw(st.one_of(st.just(token), st.just({**token, "access_token": 5}),
                          st.just({"token_type": "Bearer"}), not_text, st.just("absent")))
    server = draw(st.one_of(st.just("https://fhir.example.org/r4"), st.just("not a url"), not_text,
                            st.just("absent")))
    if auth != "absent":
        call["fhirAuthorization"] = auth
        if not (isinstance(auth, dict) and isinstance(auth.get("access_token"), str)):
            case.malformed.add("fhirAuthorization")
        elif not isinstance(server, str) or server == "absent":
            case.malformed.add("fhirServer")
    if server != "absent":
        call["fhirServer"] = server


def expected_412(case: Case) -> set[str]:
    """The prefetch keys a well-formed call lacks and cannot fetch (the runner's intake names no
    complaint, so the Conditions are required)."""
    prefetch = case.call.get("prefetch") or {}
    lacking = {f"prefetch.{k}" for k in ("patient", "conditions") if k not in prefetch}
    if "patient" in prefetch and prefetch["patient"] is None:
        lacking.add("prefetch.patient")
    return lacking


def expressions(body: dict[str, Any]) -> list[str]:
    assert body["resourceType"] == "OperationOutcome"
    return [issue["expression"][0] for issue in body["issue"]]


def test_hook_calls_get_the_answer_the_rules_predict(api: Flask) -> None:
    client = api.test_client()
    statuses: Counter[str] = Counter()
    with counted("hooks.parser_oracle", statuses=statuses) as tick:
        @given(calls())
        @SETTINGS
        def prop(case: Case) -> None:
            tick()
            response = client.post(f"/cds-services/{case.service}", json=case.call)
            status, body = response.status_code, response.get_json()
            statuses[str(status)] += 1
            if case.malformed:
                assert status == 400, (case.malformed, status, body)
                assert expressions(body)[0] in case.malformed, (case.malformed, body)
                return
            lacking = expected_412(case)
            if lacking:
                assert status == 412, (lacking, status, body)
                assert set(expressions(body)) == lacking
                return
            assert status == 200, body
            has_conditions = isinstance(case.call["prefetch"].get("conditions"), dict)
            assert bool(body["cards"]) == has_conditions
            for card in body["cards"]:
                assert not list(CARD.iter_errors(card)), card
        prop()


def test_bodies_that_are_not_objects_are_400_naming_the_root(api: Flask) -> None:
    client = api.test_client()
    with counted("hooks.non_object_bodies") as tick:
        @given(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=10), st.integers(),
                         st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False)))
        @settings(max_examples=40, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def prop(body: Any) -> None:
            tick()
            response = client.post("/cds-services/gmed-driver", data=json.dumps(body),
                                   content_type="application/json")
            assert response.status_code == 400
            assert expressions(response.get_json()) == ["$"]
        prop()


KNOWN_CARD = "known-card"  # replaced by the uuid of a card the service really gave
FEEDBACK_ITEM = {"card": KNOWN_CARD, "outcome": "accepted",
                 "outcomeTimestamp": "2026-01-15T10:00:00Z", "acceptedSuggestions": [{"id": "s1"}],
                 "overrideReason": {"reason": {"code": "x"}, "userComment": "ü"}}
FEEDBACK_WRONG = {
    "card": st.one_of(bad_strings, st.just(str(uuid.UUID(int=7)))),
    "outcome": st.one_of(st.sampled_from(["ignored", "ACCEPTED"]), not_text),
    "outcomeTimestamp": bad_strings,
    "acceptedSuggestions": st.one_of(st.just([{"id": HALF_SURROGATE}]), st.just([]), not_text,
                                     st.just([{"id": "s1", "extra": [HALF_SURROGATE, {"x": 1e300}]}])),
    "overrideReason": st.one_of(st.integers(), st.text(max_size=3), st.lists(st.none()),
                                st.just({"userComment": HALF_SURROGATE, "reason": [10 ** 30]})),
}


@st.composite
def feedback_items(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed item (of an unknown card), with up to two of its fields broken or dropped."""
    item: dict[str, Any] = dict(FEEDBACK_ITEM, outcome=draw(st.sampled_from(["accepted",
                                                                            "overridden"])))
    broken = draw(st.sampled_from([0, 0, 0, 1, 2]))
    for key in draw(st.lists(st.sampled_from(sorted(FEEDBACK_WRONG)), min_size=broken,
                             max_size=broken, unique=True)):
        if draw(st.booleans()):
            item[key] = draw(FEEDBACK_WRONG[key])
        else:
            del item[key]
    return item


def test_feedback_is_stored_or_refused_naming_the_field_never_500(api: Flask) -> None:
    """Items about a card the service gave (or an unknown one), well formed or broken: 200
    (stored), 422 naming an unknown card, or 400 naming ``feedback[i]...``; never 500."""
    client = api.test_client()
    call = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"patientId": "p1", "userId": "Practitioner/dr-1"},
            "prefetch": runner_prefetch()}
    known = client.post("/cds-services/gmed-driver", json=call).get_json()["cards"][0]["uuid"]
    statuses: Counter[str] = Counter()
    with counted("hooks.feedback", statuses=statuses) as tick:
        @given(st.one_of(st.lists(feedback_items(), min_size=1, max_size=3).map(
            lambda items: {"feedback": items}),
                         st.lists(st.one_of(feedback_items(), not_text), max_size=3).map(
            lambda items: {"feedback": items}), not_text.map(lambda v: {"feedback": v})))
        @SETTINGS
        def prop(body: dict[str, Any]) -> None:
            tick()
            text = json.dumps(body).replace(json.dumps(KNOWN_CARD), json.dumps(known))
            response = client.post("/cds-services/gmed-driver/feedback", data=text,
                                   content_type="application/json")
            statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                assert response.get_json() == {"stored": len(body["feedback"])}
                return
            assert response.status_code in (400, 422), response.get_data(as_text=True)
            named = expressions(response.get_json())
            assert all(n == "feedback" or n.startswith("feedback[") for n in named), named
        prop()
