"""The end-of-run log scan (``tests/log_scan.py``) finds what it is there to find."""

from __future__ import annotations

from tests.log_scan import leaks
from tests.service_fixtures import Signer


def test_the_scan_finds_tokens_keys_and_example_patient_ids(signer: Signer) -> None:
    token = signer.token("http://localhost/v1/features")
    assert "jwt" in leaks(f'{{"msg": "x {token}"}}')
    assert "bearer" in leaks("Authorization: Bearer abcdefghijklmnop")
    assert "private key" in leaks("-----BEGIN EC PRIVATE KEY-----")
    assert leaks('{"msg": "assessed example-runner-pfp"}') == ["example-runner-pfp"]


def test_the_scan_passes_ordinary_log_lines() -> None:
    line = ('{"ts": "2026-11-24T18:00:00.000Z", "level": "info", "logger": "service.access", '
            '"msg": "request", "route": "/v1/assessments", "status": 201, "duration_ms": 1.2}')
    assert leaks(line) == []
