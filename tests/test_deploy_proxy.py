"""The production stack (``python -m deploy.serve``: nginx in front of gunicorn) passes what the
app needs and adds nothing a client could abuse.

Through nginx: the bearer token, compressed bodies and FHIR bodies up to the app's cap reach the
app; the app's own limits and security headers still apply; headers a client sends to fake the
scheme, host or path never reach it. nginx's own errors are the app's JSON with the app's
security headers. The settings are checked and named; the stack leaves no process behind.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deploy import serve
from service.config import DEFAULTS
from service.http.headers import SECURITY_HEADERS
from tests.conftest import ROOT, load_example
from tests.proxy_stack import NGINX, Answer, Served, app_env, call, free_port, production_stack, require_nginx
from tests.service_fixtures import ISSUER, Signer, hook_call, runner_prefetch

require_nginx()

CAP = int(DEFAULTS["MAX_CONTENT_LENGTH"])
HOOK = "/cds-services/gmed-driver"


@pytest.fixture(scope="module")
def stack(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory,
          signer: Signer) -> Iterator[Served]:
    """The stack with JWT auth on (the tokens' ``aud`` is the URL nginx is reached at)."""
    tmp = tmp_path_factory.mktemp("stack")
    jwks = tmp / "ehr-jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    env = app_env(tmp, tiny_model_dir, GMED_AUTH="jwt",
                  GMED_JWT_ISSUERS=json.dumps({ISSUER: {"jwks_file": str(jwks)}}))
    with production_stack(tmp, env) as served:
        yield served


def _auth(signer: Signer, stack: Served, path: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {signer.token(stack.base + path)}"}


def _post(stack: Served, signer: Signer, path: str, body: bytes,
          **headers: str) -> Answer:
    return call(stack.base + path, body, {"Content-Type": "application/json",
                                          **_auth(signer, stack, path), **headers})


def _assert_security_headers(answer: Answer) -> None:
    for name, value in SECURITY_HEADERS:
        assert answer.header(name) == [value], name  # present, and once: nginx adds no copy


def _raw_exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is; the status, headers and body of what comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


# ---------------------------------------------------------------------------- what passes


def test_the_bearer_token_passes_the_proxy_and_no_token_is_the_apps_401(
        stack: Served, signer: Signer) -> None:
    record = json.dumps(load_example("runner_pfp_hip_driven")).encode()
    assert _post(stack, signer, "/v1/assessments", record).status == 201
    anonymous = call(stack.base + "/v1/assessments", record, {"Content-Type": "application/json"})
    assert anonymous.status == 401 and anonymous.header("WWW-Authenticate")


def test_a_gzip_body_passes_and_is_assessed_like_the_plain_one(
        stack: Served, signer: Signer) -> None:
    record = json.dumps(load_example("runner_pfp_hip_driven")).encode()
    plain = _post(stack, signer, "/v1/assessments", record)
    packed = _post(stack, signer, "/v1/assessments", gzip.compress(record),
                   **{"Content-Encoding": "gzip"})
    assert plain.status == packed.status == 201
    assert packed.body["results"][0]["probability"] == plain.body["results"][0]["probability"]


def test_a_fhir_hook_call_of_exactly_the_cap_reaches_the_app_and_a_byte_more_is_nginxs_413(
        stack: Served, signer: Signer) -> None:
    body = json.dumps(hook_call(prefetch=runner_prefetch(n_extra=900))).encode()
    assert len(body) < CAP
    at_cap = body + b" " * (CAP - len(body))  # JSON may end in whitespace
    answer = _post(stack, signer, HOOK, at_cap)
    assert answer.status == 200, answer.raw[:300]
    assert answer.body["cards"]
    over = _post(stack, signer, HOOK, at_cap + b" ")
    assert over.status == 413
    assert over.body == {"error": {"code": "http-413",
                                   "message": f"The body exceeds {CAP} bytes (MAX_CONTENT_LENGTH)"}}
    assert over.header("Content-Type") == ["application/json"]
    _assert_security_headers(over)


def test_a_small_gzip_body_past_the_cap_once_inflated_gets_the_apps_own_413(
        stack: Served, signer: Signer) -> None:
    bomb = gzip.compress(b"[" + b"0," * CAP + b"0]")
    assert len(bomb) < CAP // 100  # nginx sees a small body and passes it
    answer = _post(stack, signer, "/v1/assessments", bomb, **{"Content-Encoding": "gzip"})
    assert answer.status == 413
    assert "once decompressed" in json.dumps(answer.body)  # the app's rule, not nginx's
    _assert_security_headers(answer)


def test_the_apps_security_headers_survive_the_proxy_once_each(
        stack: Served, signer: Signer) -> None:
    record = json.dumps(load_example("runner_pfp_hip_driven")).encode()
    created = _post(stack, signer, "/v1/assessments", record)
    invalid = _post(stack, signer, "/v1/assessments", b'{"age_years": "old"}')
    missing = call(stack.base + "/no/such/route")
    assert (created.status, invalid.status, missing.status) == (201, 422, 404)
    for answer in (created, invalid, missing):
        _assert_security_headers(answer)
        assert answer.header("Server") == ["nginx"]  # no version


def test_headers_a_client_sends_to_fake_scheme_host_or_path_never_reach_the_app(
        stack: Served, signer: Signer) -> None:
    """gunicorn trusts X-Forwarded-* and SCRIPT_NAME from its unix socket; nginx sets or drops
    each one, so the app still sees http and the Host it was called at: the token minted for
    that URL is accepted and the card links there."""
    faked = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on",
             "X-Forwarded-Protocol": "ssl", "X-Forwarded-Host": "evil.example",
             "X-Forwarded-Port": "443", "X-Forwarded-Prefix": "/evil",
             "Forwarded": "proto=https;host=evil.example", "SCRIPT_NAME": "/evil"}
    answer = _post(stack, signer, HOOK, json.dumps(hook_call()).encode(), **faked)
    assert answer.status == 200, answer.raw[:300]
    links = [link["url"] for card in answer.body["cards"] for link in card.get("links", [])]
    assert links and all(url.startswith(stack.base + "/ui/assessments/") for url in links)


# ---------------------------------------------------------------------------- nginx's own errors


def test_a_malformed_request_line_is_nginxs_json_400_with_the_security_headers(
        stack: Served) -> None:
    for data in (b"GARBAGE\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"):
        status, headers, body = _raw_exchange(stack.port, data)
        assert status == 400
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "http-400"
        for name, value in SECURITY_HEADERS:
            assert headers[name] == value


def _settings(tmp: Path, **env: str) -> serve.Settings:
    return serve.settings_from_env({"GMED_RUN_DIR": str(tmp / "run"), "GMED_NGINX": NGINX,
                                    "GMED_PROXY_LISTEN": f"127.0.0.1:{free_port()}", **env})


def _nginx_alone(s: serve.Settings) -> subprocess.Popen[bytes]:
    """nginx with the rendered configuration and no gunicorn behind it."""
    serve.prepare(s)
    proc = subprocess.Popen([NGINX, "-p", str(s.run_dir), "-c", str(s.config_file)])
    port = int(s.listen.rsplit(":", 1)[1])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("nginx did not start")
            time.sleep(0.1)


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_the_app_down_is_nginxs_json_502_with_retry_after(tmp_path: Path, tls: bool) -> None:
    env: dict[str, str] = {}
    if tls:
        cert, key = _self_signed(tmp_path)
        env = {"GMED_TLS_CERT": str(cert), "GMED_TLS_KEY": str(key)}
    s = _settings(tmp_path, **env)
    proc = _nginx_alone(s)
    try:
        url = f"{'https' if tls else 'http'}://{s.listen}/v1/assessments"
        context = ssl.create_default_context(cafile=env["GMED_TLS_CERT"]) if tls else None
        if context:
            context.minimum_version = ssl.TLSVersion.TLSv1_2
        answer = call(url, b"{}", context=context)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert answer.status == 502
    assert answer.body["error"]["code"] == "http-502"
    assert "may or may not have been carried out" in answer.body["error"]["message"]
    assert answer.header("Retry-After") == [str(serve.RETRY_AFTER_S)]
    _assert_security_headers(answer)


# ---------------------------------------------------------------------------- settings


def test_the_body_cap_is_the_apps_max_content_length(tmp_path: Path) -> None:
    assert "client_max_body_size 1048576;" in serve.render(_settings(tmp_path))
    s = _settings(tmp_path, GMED_MAX_CONTENT_LENGTH="2048")
    assert "client_max_body_size 2048;" in serve.render(s)


@pytest.mark.parametrize(("env", "names"), [
    ({"GMED_PROXY_LISTEN": "not a port"}, "GMED_PROXY_LISTEN"),
    ({"GMED_PROXY_LISTEN": "127.0.0.1:70000"}, "GMED_PROXY_LISTEN"),
    ({"GMED_PROXY_CLIENT_TIMEOUT": "0"}, "GMED_PROXY_CLIENT_TIMEOUT"),
    ({"GMED_MAX_CONTENT_LENGTH": "big"}, "GMED_MAX_CONTENT_LENGTH"),
    ({"GMED_TLS_CERT": "/etc/hostname"}, "GMED_TLS_CERT and GMED_TLS_KEY"),
    ({"GMED_TLS_CERT": "/no/cert", "GMED_TLS_KEY": "/no/key"}, "GMED_TLS_CERT"),
    ({"GMED_NGINX": "/no/nginx"}, "nginx"),
])
def test_a_bad_setting_is_refused_naming_it(tmp_path: Path, env: dict[str, str],
                                            names: str) -> None:
    with pytest.raises(serve.DeployError, match=names):
        _settings(tmp_path, **env)


@pytest.mark.parametrize(("env", "named"), [
    ({"GMED_PROXY_LISTEN": "nowhere"}, "GMED_PROXY_LISTEN"),
    ({}, "JWT_ISSUERS (GMED_JWT_ISSUERS) is empty"),  # the app's production rules, checked first
])
def test_the_command_refuses_a_bad_setting_with_a_message_not_a_traceback(
        env: dict[str, str], named: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GMED_")}
    result = subprocess.run([sys.executable, "-m", "deploy.serve"], cwd=ROOT,
                            env={**clean, **env, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f"serve-production: {named}")
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------- no daemon behind


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], bound_s: float) -> list[int]:
    deadline = time.monotonic() + bound_s
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_stopping_the_command_leaves_no_nginx_or_gunicorn_behind(
        tiny_model_dir: Path, tmp_path: Path, how: str) -> None:
    """SIGTERM stops both (and removes the socket); even SIGKILL of the parent, which cannot
    clean up, takes them down (each child is told to stop when its parent dies)."""
    with production_stack(tmp_path, app_env(tmp_path, tiny_model_dir)) as stack:
        masters = _children(stack.proc.pid)
        everyone = masters + [c for m in masters for c in _children(m)]
        assert len(masters) == 2 and len(everyone) >= 4  # nginx, gunicorn and their workers
        stack.proc.send_signal(getattr(signal, how))
        stack.proc.wait(timeout=30)
        assert _wait_gone(everyone, 30) == []
        if how == "SIGTERM":
            assert stack.proc.returncode == 0
            assert stack.run_dir is not None and not (stack.run_dir / "gunicorn.sock").exists()

