"""Property-based tests over the feature contract: records generated from the contract itself.

Valid records respect every field's type, range and enum, and the dynamometer's cross-field
rules (a finding recorded where it does not apply is valid: it is set aside); near-misses break one
to three fields by a little (just out of range, a fraction for a whole number, a boolean for a
number, ``"NaN"``, a huge integer, an unknown field, unicode, a required field dropped). The
properties:

* the published JSON Schema (checked with ``jsonschema``) and :func:`cds.validate_record` agree
  on every record;
* a record the schema accepts is assessed, by :func:`cds.assess` and by ``POST /v1/assessments``
  (201); a record it rejects raises :class:`~cds.InvalidRecord` / answers 422 with every broken
  field named in ``errors[].field``; never a 500, never another exception type.

Case counts go to ``out/reliability/fuzz.json`` (see :mod:`tests.fuzz_report`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

import cds
from cds.features import Feature, record_fields, record_json_schema
from cds.model import Model
from tests.fuzz_report import counted

SCHEMA = record_json_schema()
VALIDATOR = Draft202012Validator(SCHEMA)
FIELDS: dict[str, Feature] = {f.name: f for f in record_fields()}
REQUIRED = [f.name for f in FIELDS.values() if f.required]
OPTIONAL = [f.name for f in FIELDS.values() if not f.required]
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))
API_SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                        suppress_health_check=list(HealthCheck))
NAN_LIKE = ["NaN", "nan", "Infinity", "-Infinity", "inf", "null", "", " ", "1e999", "0x10", "١٢"]
WRONG_TYPES = st.one_of(st.sampled_from(NAN_LIKE), st.lists(st.integers(), max_size=2),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                        st.text(max_size=12))


# ---------------------------------------------------------------------------- valid values


def valid_value(f: Feature) -> st.SearchStrategy[Any]:
    """Any value the contract allows for ``f`` (whole numbers also as ``30.0``, as JSON may)."""
    if f.role == "rows":
        return st.lists(st.sampled_from(f.allowed), min_size=1, max_size=len(f.allowed),
                        unique=True)
    if f.kind == "boolean":
        return st.booleans()
    if f.kind == "category":
        return st.sampled_from(f.allowed)
    assert f.minimum is not None and f.maximum is not None
    whole = st.integers(math.ceil(f.minimum), math.floor(f.maximum))
    if f.kind == "integer":
        return st.one_of(whole, whole.map(float))
    return st.one_of(whole, st.floats(f.minimum, f.maximum, allow_nan=False),
                     st.sampled_from([f.minimum, f.maximum]))


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """A record every rule accepts: required fields set, optional ones absent, null or valid,
    one dynamometer reading per side, with lever arm and body mass for a force."""
    record: dict[str, Any] = {name: draw(valid_value(FIELDS[name])) for name in REQUIRED}
    for name in OPTIONAL:
        choice = draw(st.sampled_from(("absent", "null", "value", "value")))
        if choice == "null":
            record[name] = None
        elif choice == "value":
            record[name] = draw(valid_value(FIELDS[name]))
    for torque in dict.fromkeys(f.converts_to for f in FIELDS.values() if f.converts_to):
        # one reading per side; a force comes with the lever arm and body mass
        readings = [torque, *(n for n, f in FIELDS.items() if f.converts_to == torque)]
        given = [n for n in readings if record.get(n) is not None]
        for name in given[1:]:
            del record[name]
        if given and given[0] != torque:
            for name in ("hip_abduction_lever_arm_m", "body_mass_kg"):
                if record.get(name) is None:
                    record[name] = draw(valid_value(FIELDS[name]))
    if draw(st.booleans()):
        record["patient_id"] = draw(st.one_of(st.none(), st.text(max_size=128)))
    return record


# ---------------------------------------------------------------------------- near-misses


def invalid_value(f: Feature) -> st.SearchStrategy[Any]:
    """A value that breaks ``f``'s rule, mostly by a little."""
    if f.role == "rows":
        return st.one_of(
            st.just([]), st.sampled_from(f.allowed).map(lambda c: [c, c]),
            st.sampled_from(f.allowed),  # a string, not a list
            st.lists(st.text(max_size=8).filter(lambda s: s not in f.allowed), min_size=1,
                     max_size=3),
            st.just([None]), st.just([1]), st.booleans())
    if f.kind == "boolean":
        return st.one_of(st.sampled_from(["true", "false", "yes", 0, 1, 1.0, [True]]), WRONG_TYPES)
    if f.kind == "category":
        return st.one_of(
            st.sampled_from(f.allowed).map(str.upper), st.sampled_from(f.allowed).map(lambda a: a + " "),
            st.text(max_size=20).filter(lambda s: s not in f.allowed), st.booleans(),
            st.integers(0, len(f.allowed)), st.just(list(f.allowed[:1])))
    assert f.minimum is not None and f.maximum is not None
    low, high = f.minimum, f.maximum
    step = st.one_of(st.just(1e-6), st.floats(1e-6, 10.0), st.just(1.0))
    out_of_range = st.one_of(
        step.map(lambda d: low - d), step.map(lambda d: high + d),
        st.integers(20, 400).map(lambda k: 10 ** k),     # hundreds of digits: exact in JSON
        st.integers(20, 400).map(lambda k: -(10 ** k)),
        st.sampled_from([1e308, -1e308, 1.7976931348623157e308]))
    wrong = st.one_of(st.booleans(), WRONG_TYPES, st.just(str(low)))
    if f.kind == "integer":
        fraction = st.integers(math.ceil(low), math.floor(high) - 1).map(lambda v: v + 0.5)
        return st.one_of(out_of_range, wrong, fraction)
    return st.one_of(out_of_range, wrong)


UNKNOWN_NAMES = st.one_of(
    st.text(min_size=1, max_size=90), st.sampled_from([f"{n}_x" for n in FIELDS] + ["Age_years",
                                                                                    "__proto__"]),
).filter(lambda s: s not in SCHEMA["properties"])


@st.composite
def near_misses(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """A valid record with one to three fields broken; returns it with the broken fields' paths
    as the errors must name them."""
    record = draw(valid_records())
    broken: set[str] = set()
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(("value", "value", "value", "unknown", "drop", "patient_id")))
        if how == "unknown":
            name = draw(UNKNOWN_NAMES)
            record[name] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=5)))
            broken.add(name[:64])
        elif how == "drop":
            name = draw(st.sampled_from(REQUIRED))
            record.pop(name, None)
            broken.add(name)
        elif how == "patient_id":
            record["patient_id"] = draw(st.one_of(st.integers(), st.booleans(),
                                                  st.text(min_size=129, max_size=140)))
            broken.add("patient_id")
        else:
            name = draw(st.sampled_from(sorted(FIELDS)))
            record[name] = draw(invalid_value(FIELDS[name]))
            broken.add(name)
    return record, broken


def named_fields(errors: list[dict[str, Any]] | list[Any]) -> set[str]:
    """The record fields errors name (``complaints[1]`` names ``complaints``)."""
    return {(e["field"] if isinstance(e, dict) else e.field).split("[")[0] for e in errors}


def schema_accepts(record: Any) -> bool:
    return bool(VALIDATOR.is_valid(record))


def validator_accepts(record: Any) -> tuple[bool, list[Any]]:
    try:
        cds.validate_record(record)
    except cds.InvalidRecord as e:
        return False, e.errors
    return True, []


# ---------------------------------------------------------------------------- properties


def test_valid_records_are_accepted_by_schema_and_validator() -> None:
    with counted("contract.valid_records_agree") as tick:
        @given(valid_records())
        @SETTINGS
        def prop(record: dict[str, Any]) -> None:
            tick()
            ok, errors = validator_accepts(record)
            assert schema_accepts(record), list(VALIDATOR.iter_errors(record))
            assert ok, errors
        prop()


def test_near_misses_are_rejected_by_both_naming_each_broken_field() -> None:
    with counted("contract.near_misses_agree") as tick:
        @given(near_misses())
        @SETTINGS
        def prop(case: tuple[dict[str, Any], set[str]]) -> None:
            tick()
            record, broken = case
            ok, errors = validator_accepts(record)
            assert not schema_accepts(record)
            assert not ok
            assert broken <= named_fields(errors), (broken, errors)
        prop()


def test_schema_and_validator_agree_on_any_json_object() -> None:
    """Beyond the contract's own shapes: arbitrary JSON objects keyed by contract field names."""
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                    max_size=3),
        max_leaves=6)
    keys = st.sampled_from([*SCHEMA["properties"], "x"])
    with counted("contract.arbitrary_objects_agree") as tick:
        @given(st.one_of(st.dictionaries(keys, json_values, max_size=8),
                         valid_records().flatmap(lambda r: st.dictionaries(
                             keys, json_values, max_size=2).map(lambda extra: {**r, **extra}))))
        @SETTINGS
        def prop(record: dict[str, Any]) -> None:
            tick()
            ok, errors = validator_accepts(record)
            assert schema_accepts(record) == ok, (record, errors)
        prop()


def test_unpaired_surrogate_patient_id_is_refused() -> None:
    """JSON may escape half a surrogate pair (``"\\ud800"``); such a string is not Unicode text
    (no UTF-8 store, hash or log takes it), so ``patient_id`` refuses it: the one rule the
    portable JSON Schema cannot state (its description says so)."""
    ok, errors = validator_accepts({"complaints": ["pfp"], "age_years": 40, "sex": "male",
                                    "patient_id": "p\ud800"})
    assert not ok
    assert named_fields(errors) == {"patient_id"}


def post_record(app: Flask, record: Any) -> tuple[int, dict[str, Any]]:
    response = app.test_client().post("/v1/assessments", data=json.dumps(record),
                                      content_type="application/json")
    return response.status_code, response.get_json()


def test_schema_verdict_decides_assessment_in_library_and_api(api: Flask, tiny_model: Model) -> None:
    """Accepted -> assessed (``cds.assess`` and 201); rejected -> InvalidRecord and 422 naming
    every broken field; nothing else."""
    records = st.one_of(valid_records().map(lambda r: (r, set[str]())), near_misses())
    statuses: Counter[str] = Counter()
    with counted("contract.assess_and_post", statuses=statuses) as tick:
        @given(records)
        @API_SETTINGS
        def prop(case: tuple[dict[str, Any], set[str]]) -> None:
            tick()
            record, broken = case
            accepted = schema_accepts(record)
            status, body = post_record(api, record)
            statuses[str(status)] += 1
            if accepted:
                assessment = cds.assess(record, model=tiny_model)
                # a red flag means no score: a refer has no results at all
                expected = [] if assessment.action == "refer" else record["complaints"]
                assert [r.complaint for r in assessment.results] == expected
                assert status == 201, body
                assert [r["complaint"] for r in body["results"]] == expected
                return
            with pytest.raises(cds.InvalidRecord) as raised:
                cds.assess(record, model=tiny_model)
            assert broken <= named_fields(raised.value.errors)
            assert status == 422, body
            assert broken <= named_fields(body["error"]["errors"]), (broken, body)
        prop()


def test_outcome_with_unpaired_surrogate_id_is_refused_not_500(api: Flask) -> None:
    response = api.test_client().post(
        "/v1/outcomes", content_type="application/json",
        data='{"assessment_id": "a\\ud800", "complaint": "pfp", "hip_driver": true}')
    assert response.status_code == 422, response.status_code
    assert named_fields(response.get_json()["error"]["errors"]) == {"assessment_id"}
