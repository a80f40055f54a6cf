"""Fuzzing the FHIR-to-features mapping and the prefetch path with hypothesis.

Strategies build Patients, Observations (``valueQuantity`` in the right, a convertible, a wrong
or no UCUM unit; wrong codes; components), Conditions (the contract's codes and others),
QuestionnaireResponses (answers of every type, wrong types, nested items) and Bundles (duplicate
resources, mixed subjects, OperationOutcome entries, entries without a resource, unicode, nested
bundles, large counts below the service's resource cap). The properties:

* :func:`cds.fhir.record_from_fhir` returns a record that :func:`cds.validate_record` accepts or
  rejects naming a field, or raises :class:`~cds.InvalidRecord` naming a field; nothing else;
* a value in another unit is converted exactly (checked against the conversion computed here) or
  refused with rule ``unit``: never read as if it were in the contract's unit;
* ``POST /v1/assessments`` and the hook route never answer 500; a 200 from the hook carries cards
  valid under the published Card schema.

Case counts go to ``out/reliability/fuzz.json``.
"""

from __future__ import annotations

import http.server
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

import cds
from cds.features import BY_NAME, COMPLAINT_SYSTEM, ICD10CM, SNOMED, Feature, record_fields
from cds.fhir import COMPLAINT_CODES, QUESTIONNAIRE_URL, UCUM, record_from_fhir
from service.routes.openapi import SCHEMAS
from tests.fuzz_report import counted
from tests.local_http import QuietHandler
from tests.service_fixtures import hook_call, runner_prefetch

TODAY = date(2026, 1, 15)
FIELDS = [f for f in record_fields() if f.role != "rows"]
NUMERIC = [f for f in FIELDS if f.kind in ("integer", "number")]
CARD = Draft202012Validator(SCHEMAS["Card"])
LIB_SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                        suppress_health_check=list(HealthCheck))
HTTP_SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))
# Exact factors into the contract's unit, written out here independently of cds.fhir's table
EXACT: dict[tuple[str, str], float] = {
    ("deg", "rad"): 180.0 / math.pi, ("mo", "a"): 12.0, ("mo", "wk"): 7 / 30.4375,
    ("mo", "d"): 1 / 30.4375, ("a", "mo"): 1 / 12.0, ("N.m/kg", "N.m.kg-1"): 1.0,
    ("kg/m2", "kg.m-2"): 1.0,
    # UCUM conversions of the same dimension (cds.units, ucumvert): UCUM's year is 365.25 d
    ("a", "wk"): 7 / 365.25, ("a", "d"): 1 / 365.25, ("a", "s"): 1 / (365.25 * 86400),
    ("mo", "s"): 12 / (365.25 * 86400),
    # the dynamometer's inputs (contract v2): standard gravity, the international pound
    ("N", "kgf"): 9.80665, ("kgf", "N"): 1 / 9.80665, ("m", "cm"): 0.01,
    ("kg", "[lb_av]"): 0.45359237,
}
UNITS = sorted({u for pair in EXACT for u in pair} | {
    "cm", "kg", "%", "1", "{score}", "[lb_av]", "", "m", "s", "Cel", "deg ", "DEG", "°", "mm[Hg]"})
SUBJECTS = ["Patient/p1", "Patient/p1", "Patient/p1", "Patient/p2", "Group/g1", "p1"]
HALF_SURROGATES = ["\ud800", "x\udfff"]

# ---------------------------------------------------------------------------- building blocks

texts = st.one_of(st.text(max_size=16), st.sampled_from(HALF_SURROGATES))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
                    allow_infinity=False), texts, st.integers(20, 400).map(lambda k: 10 ** k))
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=5)


def coding_of(f: Feature) -> dict[str, Any]:
    return {"system": f.coding.system, "code": f.coding.code}


feature_codes = st.sampled_from(FIELDS).map(coding_of)
wrong_codes = st.one_of(
    st.builds(lambda s, c: {"system": s, "code": c},
              st.sampled_from(["http://loinc.org", SNOMED, "urn:x", ""]), texts),
    st.sampled_from(FIELDS).map(lambda f: {"system": "http://loinc.org", "code": f.coding.code + "0"}),
    junk)
concepts = st.one_of(
    st.lists(st.one_of(feature_codes, wrong_codes), min_size=1, max_size=3).map(
        lambda cs: {"coding": cs}),
    junk)
answer_codings = st.one_of(
    st.sampled_from([{"system": SNOMED, "code": "373066001"}, {"system": SNOMED, "code": "373067005"},
                     {"code": "LA3-6"}, {"code": "LA2-8"}, {"code": "female"}, {"code": "runner"},
                     {"code": "right"}, {"code": "pfp"}, {"system": COMPLAINT_SYSTEM, "code": "itbs"}]),
    wrong_codes)


def quantity_for(f: Feature) -> st.SearchStrategy[dict[str, Any]]:
    lo, hi = f.minimum or 0.0, f.maximum or 1.0
    values = st.one_of(st.floats(lo, hi), st.integers(int(lo), int(hi)), scalars)
    return st.fixed_dictionaries(
        {"value": values},
        optional={"system": st.sampled_from([UCUM, UCUM, "http://example.org/units", None]),
                  "code": st.one_of(st.sampled_from([*UNITS, f.ucum or ""]), junk),
                  "unit": st.one_of(st.sampled_from(UNITS), texts)})


def value_for(f: Feature) -> st.SearchStrategy[dict[str, Any]]:
    """An Observation's (or an answer's) ``value[x]``, of the right type or not."""
    typed = [
        quantity_for(f).map(lambda q: {"valueQuantity": q}) if f.kind in ("integer", "number")
        else st.builds(lambda v: {"valueBoolean": v}, st.one_of(st.booleans(), junk)),
        st.builds(lambda v: {"valueInteger": v}, st.one_of(st.integers(-20, 300), junk)),
        st.builds(lambda v: {"valueDecimal": v}, st.one_of(st.floats(-20, 300), junk)),
        st.builds(lambda c: {"valueCodeableConcept": {"coding": [c]}}, answer_codings),
        st.builds(lambda c: {"valueCoding": c}, answer_codings),
        st.builds(lambda v: {"valueString": v}, st.one_of(st.sampled_from(f.allowed or ("x",)),
                                                          texts)),
        st.dictionaries(st.sampled_from(["valueQuantity", "valueBoolean", "valueCoding"]), junk,
                        max_size=1),
    ]
    return st.one_of(*typed)


@st.composite
def observations(draw: st.DrawFn) -> dict[str, Any]:
    f = draw(st.sampled_from(FIELDS))
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": draw(st.one_of(st.sampled_from(["final", "final", "amended", "preliminary",
                                                  "entered-in-error", "cancelled"]), junk)),
        "code": draw(st.one_of(st.just({"coding": [coding_of(f)]}), concepts)),
        "subject": {"reference": draw(st.sampled_from(SUBJECTS))},
        **draw(value_for(f)),
    }
    extra = draw(st.fixed_dictionaries({}, optional={
        "id": st.one_of(texts, st.integers()),
        "effectiveDateTime": st.one_of(st.sampled_from(["2026-01-10", "2025-12-01", "2026"]), junk),
        "issued": texts, "dataAbsentReason": junk,
        "component": st.lists(st.builds(lambda c, v: {"code": c, **v}, concepts, value_for(f)),
                              max_size=2),
        "subject": junk}))
    return {**resource, **extra}


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    ours = [{"system": s, "code": c} for codes in COMPLAINT_CODES.values() for s, c in codes]
    others = [{"system": ICD10CM, "code": "M17.11"}, {"system": SNOMED, "code": "22298006"},
              {"system": ICD10CM, "code": "m22.2x1"}, {"system": COMPLAINT_SYSTEM, "code": "knee"}]
    resource = {"resourceType": "Condition",
                "subject": {"reference": draw(st.sampled_from(SUBJECTS))},
                "code": {"coding": draw(st.lists(st.sampled_from(ours + others) | wrong_codes,
                                                 min_size=1, max_size=3))}}
    return {**resource, **draw(st.fixed_dictionaries({}, optional={
        "id": texts,
        "clinicalStatus": st.one_of(st.sampled_from(["active", "resolved", "recurrence"]).map(
            lambda c: {"coding": [{"code": c}]}), junk),
        "verificationStatus": st.one_of(st.sampled_from(["confirmed", "refuted"]).map(
            lambda c: {"coding": [{"code": c}]}), junk)}))}


@st.composite
def qr_items(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    link = draw(st.one_of(st.sampled_from([f.name for f in record_fields()]),
                          st.sampled_from(["intake", "exam", "hip_abduction_pct_of_norm"]),
                          texts, junk))
    f = BY_NAME.get(link) if isinstance(link, str) else None
    item: dict[str, Any] = {"linkId": link}
    if draw(st.booleans()):
        item["answer"] = draw(st.one_of(
            st.lists(value_for(f or BY_NAME["sex"]), min_size=1, max_size=2), junk))
    if depth < 3 and draw(st.integers(0, 3)) == 0:
        item["item"] = draw(st.lists(qr_items(depth + 1), max_size=3))
    return item


@st.composite
def questionnaire_responses(draw: st.DrawFn) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse",
            "questionnaire": draw(st.sampled_from([QUESTIONNAIRE_URL, f"{QUESTIONNAIRE_URL}|1",
                                                   "Questionnaire/other"])),
            "status": draw(st.sampled_from(["completed", "in-progress", "stopped"])),
            "subject": {"reference": draw(st.sampled_from(SUBJECTS))},
            "authored": draw(st.one_of(st.sampled_from(["2026-01-12", "2020-01-01"]), junk)),
            "item": draw(st.lists(qr_items(), max_size=5))}


patients = st.fixed_dictionaries(
    {"resourceType": st.just("Patient")},
    optional={"id": st.one_of(st.sampled_from(["p1", "p1", "p2"]), texts, junk),
              "gender": st.one_of(st.sampled_from(["female", "male", "other", "unknown"]), junk),
              "birthDate": st.one_of(st.sampled_from(["1990-05-02", "1960", "2001-02", "1990-02-30",
                                                      "2030-01-01", "0000-01-01", "19-0"]),
                                     st.dates().map(date.isoformat), junk)})
outcomes = st.just({"resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "not-found"}]})
resources = st.one_of(patients, observations(), conditions(), questionnaire_responses(), outcomes,
                      st.fixed_dictionaries({"resourceType": st.sampled_from(["Encounter", "Bundle"])}))


@st.composite
def bundles(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A Bundle: entries with and without resources, outcome entries, duplicates, nested bundles."""
    content = st.one_of(resources, bundles(depth + 1)) if depth < 2 else resources
    entries: list[Any] = [draw(st.one_of(
        content.map(lambda r: {"resource": r}),
        content.map(lambda r: {"resource": r, "search": {"mode": "outcome"}}),
        st.sampled_from([{}, {"resource": None}, {"fullUrl": "urn:uuid:1"}, {"search": "x"}]),
        junk)) for _ in range(draw(st.integers(0, 6)))]
    if entries and draw(st.booleans()):
        entries += entries[: draw(st.integers(1, len(entries)))]  # duplicates
    return {"resourceType": "Bundle", "type": draw(st.sampled_from(["searchset", "collection"])),
            "entry": draw(st.one_of(st.just(entries), st.just(entries), junk))}


@st.composite
def plausible_observations(draw: st.DrawFn) -> dict[str, Any]:
    """A finding of the runner, in range and in the contract's unit (or an exact conversion)."""
    f = draw(st.sampled_from([f for f in NUMERIC if f.name not in ("age_years",)]))
    assert f.minimum is not None and f.maximum is not None
    value: float = draw(st.floats(f.minimum, f.maximum))
    code = str(f.ucum)
    if f.ucum == "deg" and draw(st.booleans()):
        value, code = math.radians(value), "rad"
    quantity = {"valueInteger": round(value)} if code.startswith("{") else {
        "valueQuantity": {"value": value, "system": UCUM, "code": code}}
    return {"resourceType": "Observation", "status": "final", "code": {"coding": [coding_of(f)]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-01-14", **quantity}


runner_with_findings = st.builds(lambda extra: [*runner_resources(), *extra],
                                 st.lists(plausible_observations(), max_size=6))
fhir_inputs = st.one_of(
    resources, bundles(), st.lists(resources, max_size=5),
    st.builds(lambda extra: [*runner_resources(), *extra], st.lists(resources, max_size=4)),
    runner_with_findings, runner_with_findings)  # twice: about a third are assessable


def runner_resources() -> list[dict[str, Any]]:
    """The realistic runner's resources (the fixtures' prefetch), as one list."""
    return list(runner_prefetch().values())


# ---------------------------------------------------------------------------- properties


def field_names(errors: list[Any]) -> list[str]:
    return [e["field"] if isinstance(e, dict) else e.field for e in errors]


def test_mapping_gives_a_valid_record_or_names_the_field() -> None:
    with counted("fhir.mapping_result_or_named_error") as tick:
        @given(fhir_inputs)
        @LIB_SETTINGS
        def prop(body: Any) -> None:
            tick()
            try:
                record = record_from_fhir(body, today=TODAY).record
                cds.validate_record(record)
            except cds.InvalidRecord as e:
                assert e.errors and all(isinstance(n, str) and n for n in field_names(e.errors))
        prop()


def expected_in_contract_unit(f: Feature, value: float, code: str) -> float | None:
    """The value in the contract's unit, or None if no exact conversion exists."""
    if code == f.ucum:
        return value
    if f.ucum and f.ucum.startswith("{") and code in ("1", "{score}"):
        return value
    factor = EXACT.get((str(f.ucum), code))
    return None if factor is None else value * factor


def test_a_quantity_in_another_unit_is_converted_exactly_or_refused() -> None:
    with counted("fhir.units_converted_or_refused") as tick:
        @given(st.sampled_from(NUMERIC), st.floats(-1e6, 1e6, allow_nan=False),
               st.sampled_from(UNITS), st.booleans())
        @LIB_SETTINGS
        def prop(f: Feature, value: float, code: str, with_system: bool) -> None:
            tick()
            q: dict[str, Any] = {"value": value, "code": code}
            if with_system:
                q["system"] = UCUM
            obs = {"resourceType": "Observation", "status": "final",
                   "code": {"coding": [coding_of(f)]}, "valueQuantity": q}
            expected = expected_in_contract_unit(f, value, code)
            if expected is None:
                with pytest.raises(cds.InvalidRecord) as raised:
                    record_from_fhir(obs, today=TODAY)
                assert [(e.field, e.rule) for e in raised.value.errors] == [(f.name, "unit")]
                return
            got = record_from_fhir(obs, today=TODAY).record[f.name]
            if f.kind == "integer" and code != f.ucum and not str(f.ucum).startswith("{"):
                assert got == math.floor(expected + 1e-9)  # completed units (age in years)
            else:
                assert got == pytest.approx(expected, rel=1e-9, abs=1e-6)
        prop()


def test_deep_nesting_and_large_bundles_map_without_recursion_errors() -> None:
    """Nesting far past any JSON cap (a Python caller has none) and thousands of entries."""
    item: dict[str, Any] = {"linkId": "side", "answer": [{"valueCoding": {"code": "left"}}]}
    for i in range(5000):
        item = {"linkId": f"group-{i}", "item": [item]}
    qr = {"resourceType": "QuestionnaireResponse", "questionnaire": QUESTIONNAIRE_URL,
          "item": [item]}
    bundle: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": qr}]}
    for _ in range(5000):
        bundle = {"resourceType": "Bundle", "entry": [{"resource": bundle}]}
    assert record_from_fhir(bundle, today=TODAY).record == {"side": "left"}
    pain = {"resourceType": "Observation", "status": "final", "code": {"coding": [
        coding_of(BY_NAME["pain_nrs"])]}, "valueInteger": 4, "effectiveDateTime": "2026-01-01"}
    many = {"resourceType": "Bundle", "entry": [{"resource": pain}] * 20000}
    assert record_from_fhir(many, today=TODAY).record == {"pain_nrs": 4}


def check_error_body(status: int, body: dict[str, Any], fhir: bool) -> None:
    """A 4xx names what was wrong: errors (JSON) or issues with an expression (FHIR)."""
    if status in (400, 412, 422):
        if fhir:
            assert body["resourceType"] == "OperationOutcome"
            assert all(issue.get("expression") for issue in body["issue"]), body
        else:
            assert all(n for n in field_names(body["error"]["errors"])), body


def test_post_assessments_with_fhir_never_answers_500(api: Flask) -> None:
    client = api.test_client()
    statuses: Counter[str] = Counter()
    with counted("fhir.post_assessments_no_500", statuses=statuses) as tick:
        @given(fhir_inputs)
        @HTTP_SETTINGS
        def prop(body: Any) -> None:
            tick()
            response = client.post("/v1/assessments", data=json.dumps(body),
                                   content_type="application/fhir+json")
            statuses[str(response.status_code)] += 1
            assert response.status_code in (201, 400, 413, 422), response.get_data(as_text=True)
            check_error_body(response.status_code, response.get_json(), fhir=False)
        prop()


prefetch_values = st.one_of(st.none(), resources, bundles(), st.lists(resources, max_size=2))


@st.composite
def prefetches(draw: st.DrawFn) -> dict[str, Any]:
    """The runner's prefetch with some keys replaced, dropped or padded by fuzzed content."""
    prefetch: dict[str, Any] = runner_prefetch()
    for key in sorted(prefetch):
        how = draw(st.sampled_from(("keep", "keep", "replace", "drop", "pad")))
        if how == "replace":
            prefetch[key] = draw(prefetch_values)
        elif how == "drop":
            del prefetch[key]
        elif how == "pad":
            prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "entry": [
                {"resource": prefetch[key]}, *({"resource": r} for r in draw(
                    st.lists(resources, max_size=3)))]}
    return prefetch


def test_hook_route_with_fuzzed_prefetch_never_answers_500(api: Flask) -> None:
    client = api.test_client()
    statuses: Counter[str] = Counter()
    with counted("fhir.hook_prefetch_no_500", statuses=statuses) as tick:
        @given(prefetches())
        @HTTP_SETTINGS
        def prop(prefetch: dict[str, Any]) -> None:
            tick()
            response = client.post("/cds-services/gmed-driver", json=hook_call(prefetch=prefetch))
            status, body = response.status_code, response.get_json()
            statuses[str(status)] += 1
            assert status in (200, 400, 412, 413, 422), response.get_data(as_text=True)
            if status == 200:
                for card in body["cards"]:
                    assert not list(CARD.iter_errors(card)), card
            check_error_body(status, body, fhir=True)
        prop()


def test_large_bundle_below_the_resource_cap_is_assessed(api: Flask) -> None:
    """900 duplicate pain scores beside the runner's data: assessed (the newest score wins)."""
    prefetch = runner_prefetch(n_extra=900)
    assert len(prefetch["observations"]["entry"]) > 900
    response = api.test_client().post("/cds-services/gmed-driver",
                                      json=hook_call(prefetch=prefetch))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["cards"]


# ---------------------------------------------------------------------------- fetched prefetch


class _FhirServer:
    """A loopback FHIR server whose every answer is the current case's (status, headers, body);
    ``truncate`` promises more bytes than it sends."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes, bool] = (200, b"{}", False)
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                status, body, truncate = owner.answer
                self.send_body(body, status=status, content_type="application/fhir+json",
                               length=len(body) + (100 if truncate else 0))
                if truncate:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fhir_server() -> Iterator[_FhirServer]:
    server = _FhirServer()
    yield server
    server.close()


def _page_with_next(server_url: str, off_server: bool) -> bytes:
    base = "http://elsewhere.example.org/fhir" if off_server else server_url
    return json.dumps({"resourceType": "Bundle", "type": "searchset",
                       "link": [{"relation": "next", "url": f"{base}/Observation?page=2"}],
                       "entry": [{"resource": runner_prefetch()["patient"]}]}).encode()


NASTY_BODIES = [b"", b"not json", b"[1, 2]", b"42", b'"Patient"', b"null", b"\xff\xfe{}",
                b"[" * 50000 + b"]" * 50000, b'{"resourceType": "Bundle", "link": 5}',
                b'{"resourceType": "Bundle", "link": [{"relation": "next", "url": 5}]}',
                json.dumps({"resourceType": "OperationOutcome", "issue": []}).encode()]
server_bodies = st.one_of(fhir_inputs.map(lambda v: json.dumps(v).encode()),
                          st.sampled_from(NASTY_BODIES), st.just("next"), st.just("next-off-server"))


def _every_nasty_body(test: Callable[..., None]) -> Callable[..., None]:
    """Each nasty body, and a truncated runner Patient, tried on every run (not left to chance)."""
    patient = json.dumps(runner_prefetch()["patient"]).encode()
    for body, truncate in [*((b, False) for b in NASTY_BODIES), (patient, True), ("next", False),
                           ("next-off-server", False)]:
        test = example(body, 200, truncate)(test)
    return test


def test_fetched_prefetch_from_a_misbehaving_server_never_answers_500(
        make_app: Callable[..., Flask], fhir_server: _FhirServer) -> None:
    """Nothing prefetched; every key fetched from an allowlisted loopback server answering with
    fuzzed bodies, statuses, truncated bodies and ``next`` links (on and off the server)."""
    app = make_app(ENVIRONMENT="development", PSEUDONYM_SECRET="fuzz-secret",
                   SQLITE_SYNCHRONOUS="NORMAL", PROPAGATE_EXCEPTIONS=False,
                   FHIR_SERVER_ALLOWLIST=[fhir_server.url])
    client = app.test_client()
    auth = {"access_token": "opaque", "token_type": "Bearer", "expires_in": 300,
            "scope": "patient/*.read", "subject": "cds-service"}
    statuses: Counter[str] = Counter()
    with counted("fhir.fetched_prefetch_no_500", statuses=statuses) as tick:
        @given(server_bodies, st.sampled_from([200, 200, 200, 404, 500, 401]), st.booleans())
        @settings(HTTP_SETTINGS, max_examples=60)
        @_every_nasty_body
        def prop(body: bytes | str, status: int, truncate: bool) -> None:
            tick()
            if isinstance(body, str):
                body = _page_with_next(fhir_server.url, off_server=body == "next-off-server")
            fhir_server.answer = (status, body, truncate)
            response = client.post("/cds-services/gmed-driver", json=hook_call(
                prefetch={}, fhirServer=fhir_server.url, fhirAuthorization=auth))
            statuses[str(response.status_code)] += 1
            assert response.status_code in (200, 412, 422), response.get_data(as_text=True)
            if response.status_code == 200:
                for card in response.get_json()["cards"]:
                    assert not list(CARD.iter_errors(card)), card
        prop()
