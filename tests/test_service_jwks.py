"""JWKS faults: endpoint down, keys rotating, unknown-kid storms, slow, huge or malformed answers.

Every URL test runs against a real HTTP JWKS server on loopback (:class:`JwksEndpoint`) that
counts the GETs it receives and can be taken down, slowed, made to trickle, to answer 500, a
redirect, a huge or a malformed body, or rotate keys. Time inside the key cache is moved by hand
(:class:`Clock`), so cache lifetimes and refresh intervals are
crossed without sleeping; the only wall-clock bounds are generous ones that catch hangs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from service.http.logs import SAFE_FIELDS
from service.security.jwks import EXTENSION, JwksError, KeyCache, Limits, parse_jwks
from tests.local_http import QuietHandler
from tests.service_fixtures import BASE, ISSUER, iter_json_lines

ROUTE = "/v1/features"  # protected and cheap: the tests measure auth, not the model
THREADS = 32
SECRET = "9c41e07d5b2a8f36c1d4e9a0b7f25c83"  # production mode: no default secret accepted
HANG_BOUND_S = 10.0  # far above the 0.5 s fetch deadline, far below the endpoint's 30 s stall


class JwksEndpoint:
    """A JWKS server on loopback that counts its GETs and misbehaves on demand.

    ``mode``: ``ok``, ``error`` (500), ``redirect`` (302 to itself), ``hang`` (answers after 30 s),
    ``trickle`` (one byte every 50 ms), ``huge`` (10 MiB, declared), ``endless`` (no length, until
    the client hangs up). ``delay_s`` slows every answer; ``down()``/``up()`` close and reopen the
    port."""

    def __init__(self) -> None:
        self.body = b'{"keys": []}'
        self.cache_control: str | None = None
        self.mode = "ok"
        self.delay_s = 0.0
        self.gets = 0
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    def up(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        server.daemon_threads = True
        server.endpoint = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.server = server

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        ep: JwksEndpoint = self.server.endpoint  # type: ignore[attr-defined]
        with ep.lock:
            ep.gets += 1
        time.sleep(ep.delay_s)
        with contextlib.suppress(OSError):  # the client hung up, as it should on a huge answer
            self._answer(ep)

    def _answer(self, ep: JwksEndpoint) -> None:
        if ep.mode == "hang" and ep.release.wait(30):
            return
        if ep.mode in ("error", "redirect"):
            self.send_response(500 if ep.mode == "error" else 302)
            self.send_header("Location", ep.url)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if ep.mode == "trickle":
            self.send_header("Content-Length", "1000")
            self.end_headers()
            while not ep.release.wait(0.05):
                self.wfile.write(b" ")
                self.wfile.flush()
            return
        if ep.mode in ("huge", "endless"):
            if ep.mode == "huge":
                self.send_header("Content-Length", str(10 << 20))
            self.end_headers()
            for _ in range(160):
                self.wfile.write(b"[" * 65536)
            return
        if ep.cache_control:
            self.send_header("Cache-Control", ep.cache_control)
        self.send_header("Content-Length", str(len(ep.body)))
        self.end_headers()
        self.wfile.write(ep.body)


class Ehr:
    """An EHR signing ES384 tokens with keys named by ``kid``; it publishes any subset of them."""

    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}

    def jwks(self, *kids: str) -> bytes:
        out = []
        for kid in kids:
            key = self.keys.setdefault(kid, ec.generate_private_key(ec.SECP384R1()))
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "alg": "ES384", "use": "sig"})
        return json.dumps({"keys": out}).encode()

    def token(self, kid: str, jku: str | None = None) -> str:
        """A token for ``ROUTE``; an unpublished ``kid`` is signed with a throwaway key."""
        key = self.keys.get(kid) or ec.generate_private_key(ec.SECP384R1())
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": BASE + ROUTE, "iat": now, "exp": now + 300,
                  "jti": str(uuid.uuid4())}
        headers = {"kid": kid, **({"jku": jku} if jku else {})}
        return jwt.encode(claims, key, algorithm="ES384", headers=headers)


class Clock:
    """The key cache's clock, standing still unless the test moves it: no result depends on how
    long a step took on a busy machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def status(app: Flask, token: str) -> int:
    response = app.test_client().get(ROUTE, headers={"Authorization": f"Bearer {token}"})
    code: int = response.status_code
    return code


def storm(app: Flask, tokens: list[str]) -> list[int]:
    """Send ``tokens`` from ``THREADS`` threads released together; the statuses in order."""
    barrier = threading.Barrier(THREADS)
    chunks = [tokens[i::THREADS] for i in range(THREADS)]

    def run(chunk: list[str]) -> list[int]:
        barrier.wait(timeout=HANG_BOUND_S)
        return [status(app, t) for t in chunk]

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(run, chunks))
    codes = [0] * len(tokens)
    for i, chunk_codes in enumerate(results):
        codes[i::THREADS] = chunk_codes
    return codes


@pytest.fixture
def endpoint() -> Iterator[JwksEndpoint]:
    ep = JwksEndpoint()
    yield ep
    ep.release.set()
    ep.down()


@pytest.fixture
def ehr() -> Ehr:
    return Ehr()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jku_app(make_app: Callable[..., Flask], endpoint: JwksEndpoint,
            clock: Clock) -> Callable[..., Flask]:
    """An app whose issuer's keys come from ``endpoint``; keyword args override ``JWKS_*``."""
    def build(**config: Any) -> Flask:
        app = make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jku": [endpoint.url]}},
                       PSEUDONYM_SECRET=SECRET, **config)
        app.extensions[EXTENSION].clock = clock
        return app
    return build


def reasons(stream: io.StringIO) -> list[str]:
    return [line["reason"] for line in iter_json_lines(stream.getvalue()) if "reason" in line]


# ------------------------------------------------------------------ 1. endpoint down, max-age


@pytest.mark.parametrize(("cache_control", "seconds"), [
    (None, 300.0), ("max-age=120", 120.0), ("public, max-age=120, must-revalidate", 120.0),
    ("max-age=5", 60.0), ("max-age=999999", 3600.0), ("no-store", 60.0), ("no-cache", 60.0),
    ('max-age="600"', 600.0), ("s-maxage=900", 300.0), ("max-age=junk", 300.0)])
def test_cache_lifetime_is_max_age_within_bounds(cache_control: str | None,
                                                 seconds: float) -> None:
    assert Limits().lifetime(cache_control) == seconds


def test_cached_keys_outlive_an_outage_until_max_age_then_recover(
        jku_app: Callable[..., Flask], endpoint: JwksEndpoint, ehr: Ehr, clock: Clock,
        service_logs: io.StringIO) -> None:
    endpoint.body, endpoint.cache_control = ehr.jwks("ec-1"), "max-age=120"
    app = jku_app()
    assert status(app, ehr.token("ec-1", endpoint.url)) == 200
    endpoint.down()
    clock.advance(119)
    assert status(app, ehr.token("ec-1", endpoint.url)) == 200  # cached, endpoint not needed
    clock.advance(2)
    assert status(app, ehr.token("ec-1", endpoint.url)) == 401  # expired, endpoint down
    assert reasons(service_logs)[-2:] == ["jwks unreachable", "jwks unreachable"]  # fetch, then token
    endpoint.up()
    assert status(app, ehr.token("ec-1", endpoint.url)) == 401  # failure cached for retry_s
    assert endpoint.gets == 1
    clock.advance(Limits().retry_s)
    assert status(app, ehr.token("ec-1", endpoint.url)) == 200  # recovered
    assert endpoint.gets == 2


def test_failing_endpoint_is_asked_once_per_retry_interval(
        jku_app: Callable[..., Flask], endpoint: JwksEndpoint, ehr: Ehr, clock: Clock) -> None:
    endpoint.mode = "error"
    app = jku_app()
    assert {status(app, ehr.token("ec-1", endpoint.url)) for _ in range(5)} == {401}
    assert endpoint.gets == 1
    clock.advance(Limits().retry_s)
    endpoint.mode, endpoint.body = "ok", ehr.jwks("ec-1")
    assert status(app, ehr.token("ec-1", endpoint.url)) == 200
    assert endpoint.gets == 2


# ------------------------------------------------------------------ 2. rotation and storms


def test_unknown_kid_triggers_one_refresh_and_the_rotated_key_is_accepted(
        jku_app: Callable[..., Flask], endpoint: JwksEndpoint, ehr: Ehr, clock: Clock,
        service_logs: io.StringIO) -> None:
    endpoint.body = ehr.jwks("ec-1")
    app = jku_app()
    assert status(app, ehr.token("ec-1", endpoint.url)) == 200
    endpoint.body = ehr.jwks("ec-2")  # the EHR rotates: ec-1 retired, ec-2 published
    assert status(app, ehr.token("ec-2", endpoint.url)) == 401  # within the min refresh interval
    assert endpoint.gets == 1 and reasons(service_logs)[-1] == "unknown kid"
    clock.advance(Limits().min_refresh_s)
    assert status(app, ehr.token("ec-2", endpoint.url)) == 200
    assert endpoint.gets == 2
    assert status(app, ehr.token("ec-1", endpoint.url)) == 401  # the retired key is gone
    assert status(app, ehr.token("ec-3", endpoint.url)) == 401  # no second refresh so soon
    assert endpoint.gets == 2


def test_unknown_kid_storm_fetches_at_most_once_per_min_refresh_interval(
        jku_app: Callable[..., Flask], endpoint: JwksEndpoint, ehr: Ehr, clock: Clock,
        capsys: pytest.CaptureFixture[str]) -> None:
    """32 threads, 4 random unknown kids and 1 valid token each, in five rounds."""
    endpoint.body, endpoint.delay_s = ehr.jwks("ec-1"), 0.3  # slow: the threads pile up
    app = jku_app()

    def round_() -> tuple[int, list[int], list[int]]:
        before = endpoint.gets
        valid = [ehr.token("ec-1", endpoint.url) for _ in range(THREADS)]
        rogue = [ehr.token(f"rogue-{uuid.uuid4()}", endpoint.url) for _ in range(4 * THREADS)]
        codes = storm(app, valid + rogue)
        return endpoint.gets - before, codes[:THREADS], codes[THREADS:]

    cold = round_()  # nothing cached: one thread fetches, the others wait for its result
    warm = round_()  # within the min refresh interval: no fetch at all
    clock.advance(Limits().min_refresh_s)
    refresh = round_()  # interval over: one fetch for all the unknown kids
    endpoint.mode = "error"
    clock.advance(Limits().min_refresh_s)
    failing = round_()  # the fetch fails once; cached keys still serve
    clock.advance(Limits().cache_s)
    expired = round_()  # keys expired, endpoint failing: one fetch, every token refused
    fetches = [r[0] for r in (cold, warm, refresh, failing, expired)]
    with capsys.disabled():
        print(f"\njwks storm: {THREADS} threads x 160 tokens per round; fetches per round "
              f"(cold, warm, refresh, failing, expired) = {fetches}")
    assert fetches == [1, 0, 1, 1, 1]
    for r in (cold, warm, refresh, failing):
        assert set(r[1]) == {200} and set(r[2]) == {401}
    assert set(expired[1]) == set(expired[2]) == {401}


# ------------------------------------------------------------------ 3. slow, huge, malformed


@pytest.mark.parametrize("mode", ["hang", "trickle"])
def test_slow_endpoint_holds_no_worker_beyond_the_fetch_deadline(
        jku_app: Callable[..., Flask], endpoint: JwksEndpoint, ehr: Ehr, mode: str,
        service_logs: io.StringIO) -> None:
    endpoint.mode = mode  # trickle: a per-read timeout would never fire, only a deadline does
    app = jku_app(JWKS_FETCH_TIMEOUT=0.5)
    tokens = [ehr.token("ec-1", endpoint.url) for _ in range(8)]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda t: status(app, t), tokens))
    assert time.monotonic() - started < HANG_BOUND_S  # catches a hang (the stall lasts 30 s)
    assert codes == [401] * 8
    assert endpoint.gets == 1  # the other seven waited for the one fetch
    assert "jwks fetch timed out" in reasons(service_logs)


def test_silent_https_endpoint_is_cut_at_the_deadline(make_app: Callable[..., Flask], ehr: Ehr,
                                                      service_logs: io.StringIO) -> None:
    """A TLS handshake that never gets an answer (the port accepts, nobody speaks)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/jwks.json"
        app = make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jku": [url]}}, PSEUDONYM_SECRET=SECRET,
                       JWKS_FETCH_TIMEOUT=0.5)
        started = time.monotonic()
        assert status(app, ehr.token("ec-1", url)) == 401
        assert time.monotonic() - started < HANG_BOUND_S
    assert reasons(service_logs)[-1] == "jwks fetch timed out"


@pytest.mark.parametrize("header", [{"kid": ""}, {"kid": "ec-1", "jku": ["x"]}])
def test_kid_or_jku_of_the_wrong_type_is_refused(jku_app: Callable[..., Flask], ehr: Ehr,
                                                 endpoint: JwksEndpoint,
                                                 header: dict[str, Any]) -> None:
    endpoint.body = ehr.jwks("ec-1")
    app = jku_app()
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": BASE + ROUTE, "iat": now, "exp": now + 60,
                        "jti": str(uuid.uuid4())}, ehr.keys["ec-1"], algorithm="ES384",
                       headers={"jku": endpoint.url, **header})
    assert status(app, token) == 401
    assert endpoint.gets == 0


@pytest.mark.parametrize(("mode", "body", "reason"), [
    ("huge", b"", "jwks too large"),
    ("endless", b"", "jwks too large"),
    ("redirect", b"", "jwks answered http 302"),
    ("ok", b"\xff\xfenot json", "jwks is not json"),
    ("ok", b"[" * 60000, "jwks is not json"),
    ("ok", b'{"keys": {"kid": "ec-1"}}', "jwks has no key list"),
    ("ok", b'{"keys": [1, "x", null, {"kid": 7}]}', "unknown kid"),
    ("ok", b'{"keys": [{"kid": "ec-1", "kty": "EC", "crv": "P-384", "x": "!", "y": "?"}]}',
     "InvalidKeyError"),
])
def test_huge_or_malformed_jwks_is_refused_without_crashing(
        jku_app: Callable[..., Flask], endpoint: JwksEndpoint, ehr: Ehr, mode: str,
        body: bytes, reason: str, service_logs: io.StringIO) -> None:
    endpoint.mode, endpoint.body = mode, body
    app = jku_app()
    assert status(app, ehr.token("ec-1", endpoint.url)) == 401
    assert reasons(service_logs)[-1] == reason
    assert app.test_client().get("/healthz").status_code == 200


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=256),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.sampled_from(["keys", "kid", "kty", "x"]), inner,
                                   max_size=4), max_leaves=20).map(
        lambda doc: json.dumps(doc).encode())))
def test_any_body_parses_to_a_key_set_or_a_refusal(raw: bytes) -> None:
    try:
        keys = parse_jwks(raw)
    except JwksError as e:
        assert e.reason in ("jwks is not json", "jwks has no key list")
    else:
        assert all(isinstance(kid, str) for kid in keys.by_kid)


def test_a_kid_given_to_two_keys_is_refused(ehr: Ehr) -> None:
    doc = json.loads(ehr.jwks("ec-1", "ec-2"))
    doc["keys"][1]["kid"] = "ec-1"
    assert len(parse_jwks(json.dumps(doc).encode())) == 0


# ------------------------------------------------------------------ 4. jwks_file rotation


def replace(path: Path, body: bytes) -> None:
    """Rotate a key file the documented way: write beside, then rename over."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)


@pytest.fixture
def file_app(make_app: Callable[..., Flask], tmp_path: Path,
             ehr: Ehr) -> tuple[Flask, Path, KeyCache]:
    path = tmp_path / "ehr-jwks.json"
    path.write_bytes(ehr.jwks("ec-1"))
    app = make_app(AUTH="jwt", JWT_ISSUERS={ISSUER: {"jwks_file": str(path)}},
                   PSEUDONYM_SECRET=SECRET)
    return app, path, app.extensions[EXTENSION]


def test_jwks_file_replaced_atomically_is_picked_up(file_app: tuple[Flask, Path, KeyCache],
                                                   ehr: Ehr) -> None:
    app, path, cache = file_app
    assert status(app, ehr.token("ec-1")) == 200
    replace(path, ehr.jwks("ec-2"))
    assert status(app, ehr.token("ec-2")) == 200
    assert status(app, ehr.token("ec-1")) == 401  # retired with the old file
    assert cache.stats(str(path)) == (2, 0)


def test_unknown_kid_storm_on_a_file_never_rereads_it(file_app: tuple[Flask, Path, KeyCache],
                                                      ehr: Ehr) -> None:
    app, path, cache = file_app
    assert status(app, ehr.token("ec-1")) == 200
    codes = storm(app, [ehr.token(f"rogue-{uuid.uuid4()}") for _ in range(4 * THREADS)])
    assert set(codes) == {401}
    assert cache.stats(str(path)) == (1, 0)


def test_broken_jwks_file_keeps_the_last_good_keys(file_app: tuple[Flask, Path, KeyCache],
                                                   ehr: Ehr, service_logs: io.StringIO) -> None:
    app, path, cache = file_app
    assert status(app, ehr.token("ec-1")) == 200
    replace(path, b'{"keys": [')  # a half-written file
    assert [status(app, ehr.token("ec-1")) for _ in range(3)] == [200] * 3
    assert cache.stats(str(path)) == (2, 1)  # read once, refused once
    assert "jwks is not json" in reasons(service_logs)
    replace(path, ehr.jwks("ec-2"))
    assert status(app, ehr.token("ec-2")) == 200


def test_missing_jwks_file_refuses_every_token(file_app: tuple[Flask, Path, KeyCache],
                                               ehr: Ehr, service_logs: io.StringIO) -> None:
    app, path, _ = file_app
    assert status(app, ehr.token("ec-1")) == 200
    path.unlink()
    assert status(app, ehr.token("ec-1")) == 401
    assert reasons(service_logs)[-1] == "jwks file unreadable"


# ------------------------------------------------------------------ 5. logs


def test_jwks_faults_log_no_token_key_or_body(jku_app: Callable[..., Flask],
                                              endpoint: JwksEndpoint, ehr: Ehr, clock: Clock,
                                              service_logs: io.StringIO) -> None:
    endpoint.body = ehr.jwks("ec-1", "ec-2")
    app = jku_app()
    tokens = [ehr.token(kid, endpoint.url) for kid in ("ec-1", "ec-2", "rogue")]
    for token in tokens:
        status(app, token)
    for mode in ("error", "huge", "ok"):
        endpoint.mode, endpoint.body = mode, b'{"keys": "secret-body-4d1f"}'
        clock.advance(Limits().cache_s)
        tokens.append(ehr.token("ec-1", endpoint.url))
        status(app, tokens[-1])
    text = service_logs.getvalue()
    secrets = [*tokens, "secret-body-4d1f", endpoint.url]
    secrets += [t.split(".")[2] for t in tokens]  # signatures
    secrets += [jwk[c] for jwk in json.loads(ehr.jwks("ec-1", "ec-2"))["keys"] for c in "xy"]
    assert text and not [s for s in secrets if s in text]
    allowed = {"ts", "level", "logger", "msg", "exception", *SAFE_FIELDS}
    assert all(set(line) <= allowed for line in iter_json_lines(text))
