"""Size and time limits: compressed bodies and bombs, JSON nesting, FHIR resources per request, and
the request deadline (503 with Retry-After, nothing stored)."""

from __future__ import annotations

import gzip
import io
import json
import math
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

import cds
from service.http import deadline
from service.http.limits import CHUNK, inflate, json_depth, over_resources
from service.store import assessments, get_store
from tests.conftest import load_example
from tests.local_http import QuietHandler
from tests.service_fixtures import hook_call, observation, runner_prefetch, searchset

HOOK = "/cds-services/gmed-driver"
CAP = 1 << 20  # the default MAX_CONTENT_LENGTH


@pytest.fixture
def record() -> dict[str, Any]:
    return load_example("runner_pfp_hip_driven")


class CountingStream(io.BytesIO):
    """A request body that counts the bytes the service read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.served = 0

    def read(self, size: int | None = -1, /) -> bytes:
        out = super().read(size)
        self.served += len(out)
        return out

    def readinto(self, buffer: Any, /) -> int:
        n = super().readinto(buffer)
        self.served += n
        return n


def gzip_bomb(size: int, block: int = 16 << 20) -> bytes:
    """A valid gzip of ``size`` zero bytes, built without compressing them all: after a full
    flush deflate's output for each further block of zeros is the same bytes, so it is repeated
    (the trailer's CRC is computed block by block)."""
    engine = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(block)
    first = engine.compress(zeros) + engine.flush(zlib.Z_FULL_FLUSH)
    repeat = engine.compress(zeros) + engine.flush(zlib.Z_FULL_FLUSH)
    blocks = size // block
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return (header + first + repeat * (blocks - 1) + engine.flush()
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


@pytest.fixture(scope="module")
def gib_bomb() -> bytes:
    return gzip_bomb(1 << 30)


def post_encoded(app: Flask, path: str, body: bytes, encoding: str,
                 **headers: str) -> tuple[Any, CountingStream]:
    stream = CountingStream(body)
    response = app.test_client().post(
        path, input_stream=stream, content_length=len(body), content_type="application/json",
        headers={"Content-Encoding": encoding, **headers})
    return response, stream


# --------------------------------------------------------------------------- compressed bodies


def test_bomb_builder_makes_a_real_gzip() -> None:
    small = gzip_bomb(64 << 20, block=1 << 20)
    assert gzip.decompress(small) == bytes(64 << 20)


@pytest.mark.parametrize("encoding,compress", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),  # RFC 9110 deflate: zlib-wrapped
    ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send it
])
def test_compressed_body_is_assessed_like_the_plain_one(
        app: Flask, record: dict[str, Any], encoding: str,
        compress: Callable[[bytes], bytes]) -> None:
    plain = app.test_client().post("/v1/assessments", json=record)
    response, _ = post_encoded(app, "/v1/assessments", compress(json.dumps(record).encode()),
                               encoding)
    assert plain.status_code == response.status_code == 201
    assert [r["probability"] for r in response.get_json()["results"]] \
        == [r["probability"] for r in plain.get_json()["results"]]


def test_compressed_hook_call_is_answered(app: Flask) -> None:
    response, _ = post_encoded(app, HOOK, gzip.compress(json.dumps(hook_call()).encode()), "gzip")
    assert response.status_code == 200 and len(response.get_json()["cards"]) == 1


@pytest.mark.parametrize("path,fhir", [("/v1/assessments", False), (HOOK, True)])
def test_other_content_encodings_are_415(app: Flask, path: str, fhir: bool) -> None:
    response, stream = post_encoded(app, path, b"\x00" * 100, "br")
    assert response.status_code == 415 and stream.served == 0
    body = response.get_json()
    if fhir:
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "not-supported"
    else:
        assert body["error"]["code"] == "unsupported-media-type"


@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(b'{"a": 1}')[:-12]])
def test_corrupt_or_truncated_gzip_is_400(app: Flask, body: bytes) -> None:
    response, _ = post_encoded(app, "/v1/assessments", body, "gzip")
    assert response.status_code == 400
    assert response.get_json()["error"]["errors"][0] == {
        "field": "$", "rule": "encoding", "message": "The body is not valid gzip data"}


def test_decompressed_size_cap_is_inclusive(make_app: Callable[..., Flask],
                                            record: dict[str, Any]) -> None:
    cap = 8192
    app = make_app(MAX_CONTENT_LENGTH=cap)
    text = json.dumps(record).encode()
    exact = text + b" " * (cap - len(text))
    assert post_encoded(app, "/v1/assessments", gzip.compress(exact), "gzip")[0].status_code == 201
    over, _ = post_encoded(app, "/v1/assessments", gzip.compress(exact + b" "), "gzip")
    assert over.status_code == 413 and over.get_json()["error"]["code"] == "request-entity-too-large"


def test_gigabyte_gzip_bomb_is_refused_after_one_chunk(app: Flask, gib_bomb: bytes) -> None:
    """1 GiB of zeros in ~1 MB of gzip (under the 1 MiB body cap): 413 once the decompressed
    size passes the cap, having read one chunk of it."""
    assert len(gib_bomb) < CAP and struct.unpack("<I", gib_bomb[-4:])[0] == 1 << 30
    response, stream = post_encoded(app, HOOK, gib_bomb, "gzip")
    assert response.status_code == 413
    assert response.get_json()["issue"][0]["code"] == "too-costly"
    assert stream.served <= CAP + CHUNK
    assert stream.served <= CHUNK  # deflate's best ratio is ~1032:1: one chunk overflows the cap


def test_bomb_inflation_holds_at_most_about_the_cap_in_memory(gib_bomb: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(Exception, match="exceeds") as refused:
            inflate(io.BytesIO(gib_bomb), "gzip", CAP)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.code == 413  # type: ignore[attr-defined]
    assert peak < 3 * CAP  # the output so far (<= cap + 1) and one decompress step's copy


def test_concatenated_gzip_members_are_read_whole(app: Flask, record: dict[str, Any]) -> None:
    text = json.dumps(record).encode()
    body = gzip.compress(text[:40]) + gzip.compress(text[40:])
    assert post_encoded(app, "/v1/assessments", body, "gzip")[0].status_code == 201


def test_bomb_from_an_anonymous_caller_is_never_decompressed(secure_app: Flask,
                                                            gib_bomb: bytes) -> None:
    response, stream = post_encoded(secure_app, HOOK, gib_bomb, "gzip")
    assert response.status_code == 401 and stream.served == 0


def test_bomb_on_the_clinician_form_is_413(app: Flask) -> None:
    stream = CountingStream(gzip_bomb(64 << 20, block=1 << 20))
    response = app.test_client().post(
        "/ui/assessments", input_stream=stream, content_length=len(stream.getvalue()),
        content_type="application/x-www-form-urlencoded", headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413 and stream.served <= CHUNK


# --------------------------------------------------------------------------- nesting depth


def _reference_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    return 0


_TRICKY_TEXT = st.text(alphabet=st.sampled_from('[]{}"\\/ab\u00e9\u2603\U0001f600\n\t:,'),
                       max_size=12)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY_TEXT, inner, max_size=4),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(value=_JSON_VALUES, ascii_only=st.booleans())
def test_depth_scan_agrees_with_the_parsed_depth(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(text, 0) == _reference_depth(value)


def test_depth_scan_does_not_recurse() -> None:
    deep = "[" * 1_000_000 + "]" * 1_000_000  # a recursive scan would overflow at ~1000
    assert json_depth(deep, 64) == 1_000_000


def test_depth_scan_of_an_unterminated_string_is_linear() -> None:
    """Each escaped quote could restart a naive string match: quadratic, i.e. a hang."""
    hostile = "[" * 100 + '"' + '\\"[' * 300_000
    started = time.monotonic()
    assert json_depth(hostile, 64) == 100
    assert time.monotonic() - started < 20  # catches a hang only (quadratic is hours)


@pytest.mark.parametrize("path", ["/v1/assessments", HOOK])
def test_nesting_past_the_cap_is_400_max_depth(app: Flask, path: str) -> None:
    response = app.test_client().post(path, data="[" * 65 + "]" * 65,
                                      content_type="application/json")
    assert response.status_code == 400
    body = response.get_json()
    if path == HOOK:
        [issue] = body["issue"]
        assert issue["expression"] == ["$"]
        assert issue["details"]["coding"][0]["code"] == "maxDepth"
    else:
        assert body["error"]["errors"][0]["field"] == "$"
        assert body["error"]["errors"][0]["rule"] == "maxDepth"


def test_nesting_at_the_cap_is_parsed(app: Flask) -> None:
    response = app.test_client().post("/v1/assessments", data="[" * 64 + "]" * 64,
                                      content_type="application/json")
    assert response.status_code == 422  # parsed, then refused as not a record


def test_brackets_inside_strings_do_not_count(app: Flask) -> None:
    call = hook_call()
    call["context"]["userId"] = "[{" * 100
    response = app.test_client().post(HOOK, json=call)
    assert response.status_code == 200


# --------------------------------------------------------------------------- FHIR resources


def _bundle(n: int) -> dict[str, Any]:
    return searchset(*[observation("pain_nrs", valueInteger=5) for _ in range(n)])


def _walk(value: Any) -> Iterator[Any]:
    yield value
    children = value.values() if isinstance(value, dict) else value \
        if isinstance(value, list) else []
    for child in children:
        yield from _walk(child)


def _resources_in(value: Any) -> int:
    return sum(1 for v in _walk(value) if isinstance(v, dict)
               and isinstance(v.get("resourceType"), str))


def test_resources_past_the_cap_are_413_too_costly_naming_the_array(
        make_app: Callable[..., Flask]) -> None:
    prefetch = runner_prefetch()
    prefetch["observations"] = _bundle(30)
    call = hook_call(prefetch=prefetch)
    count = _resources_in(call)
    at_cap = make_app(FHIR_MAX_RESOURCES=count).test_client().post(HOOK, json=call)
    assert at_cap.status_code == 200
    over = make_app(FHIR_MAX_RESOURCES=count - 1).test_client().post(HOOK, json=call)
    assert over.status_code == 413
    [issue] = over.get_json()["issue"]
    assert issue["code"] == "too-costly"
    assert issue["expression"] == ["prefetch.observations.entry"]
    assert issue["details"]["coding"][0]["code"] == "maxResources"


def test_default_cap_refuses_a_bundle_of_1001_entries(app: Flask) -> None:
    response = app.test_client().post("/v1/assessments", json=_bundle(1001))
    assert response.status_code == 413
    [error] = response.get_json()["error"]["errors"]
    assert error["field"] == "entry" and error["rule"] == "maxResources"


def test_escaped_resource_type_keys_are_counted(make_app: Callable[..., Flask]) -> None:
    text = json.dumps(_bundle(30)).replace('"resourceType"', '"resourc\\u0065Type"')
    response = make_app(FHIR_MAX_RESOURCES=20).test_client().post(
        "/v1/assessments", data=text, content_type="application/json")
    assert response.status_code == 413


def test_resources_in_a_top_level_list_name_the_body(make_app: Callable[..., Flask]) -> None:
    response = make_app(FHIR_MAX_RESOURCES=5).test_client().post(
        "/v1/assessments", json=[observation("pain_nrs", valueInteger=5)] * 6)
    assert response.status_code == 413
    assert response.get_json()["error"]["errors"][0]["field"] == "$"


# --------------------------------------------------------------------------- deadline


class _SlowFhir(QuietHandler):
    """A FHIR server that does not answer until released."""

    release = threading.Event()

    def do_GET(self) -> None:
        self.release.wait(60)
        self.send_response(404)
        self.end_headers()


@pytest.fixture
def slow_fhir() -> Iterator[str]:
    _SlowFhir.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowFhir)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        _SlowFhir.release.set()
        server.shutdown()
        server.server_close()


def _stored(app: Flask) -> int:
    with app.app_context():
        return len(get_store().rows(assessments))


def test_slow_fhir_fetch_is_cut_at_the_deadline_with_503(make_app: Callable[..., Flask],
                                                         slow_fhir: str) -> None:
    """The server never answers and FHIR_TIMEOUT is 30 s: the fetch waits only the request's
    remaining second, the next fetch is not started, and the answer is a 503."""
    app = make_app(REQUEST_DEADLINE=1.0, FHIR_TIMEOUT=30.0, FHIR_SERVER_ALLOWLIST=[slow_fhir])
    call = hook_call(prefetch={}, fhirServer=slow_fhir,
                     fhirAuthorization={"access_token": "t", "token_type": "Bearer"})
    before = _stored(app)
    started = time.monotonic()
    response = app.test_client().post(HOOK, json=call)
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    [issue] = response.get_json()["issue"]
    assert issue["code"] == "timeout" and "deadline" in issue["diagnostics"]
    assert elapsed < 25  # catches a wait for FHIR_TIMEOUT (30 s per key), not a speed test
    assert _stored(app) == before


def test_deadline_on_a_json_route_is_a_json_503(make_app: Callable[..., Flask],
                                                record: dict[str, Any]) -> None:
    app = make_app(REQUEST_DEADLINE=0.05)
    app.before_request(lambda: time.sleep(0.1))  # a slow stage before the body is used
    response = app.test_client().post("/v1/assessments", json=record)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "deadline-exceeded"
    assert _stored(app) == 0


@pytest.mark.parametrize("path", ["/v1/assessments", HOOK])
def test_slow_model_answers_503_and_stores_nothing(make_app: Callable[..., Flask],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   record: dict[str, Any], path: str) -> None:
    real = cds.assess

    def slow_assess(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(cds, "assess", slow_assess)
    app = make_app(REQUEST_DEADLINE=0.1)
    response = app.test_client().post(path, json=record if path != HOOK else hook_call())
    assert (response.status_code, _stored(app)) == (503, 0)


def test_no_deadline_outside_a_request_or_when_off(make_app: Callable[..., Flask]) -> None:
    assert deadline.remaining() == math.inf
    deadline.check("store")  # no request: never raises
    app = make_app(REQUEST_DEADLINE=0)
    with app.test_request_context("/v1/assessments"):
        deadline.start()
        assert deadline.remaining() == math.inf


def test_remaining_counts_down_and_never_goes_negative(make_app: Callable[..., Flask]) -> None:
    app = make_app(REQUEST_DEADLINE=0.05)
    with app.test_request_context("/v1/assessments"):
        deadline.start()
        assert 0 < deadline.remaining() <= 0.05
        assert deadline.bounded(30.0, "prefetch") <= 0.05
        time.sleep(0.06)
        assert deadline.remaining() == 0.0
        with pytest.raises(Exception, match="deadline") as late:
            deadline.bounded(30.0, "prefetch")
        assert late.value.status == 503  # type: ignore[attr-defined]


def test_resource_count_blames_the_fullest_array() -> None:
    body = {"prefetch": {"patient": {"resourceType": "Patient"}, "observations": _bundle(3)}}
    assert over_resources(body, 5) is None  # the Patient, the Bundle and its 3 Observations
    assert over_resources(body, 4) == "prefetch.observations.entry"
    alone = {"prefetch": {"patient": {"resourceType": "Patient"}}}
    assert over_resources(alone, 0) == "prefetch.patient"
