"""Everything the service logged during the whole test run, scanned for secrets at the end.

A pytest plugin (registered in ``conftest.py``): from the start of the session, every record of
the ``service`` loggers, whatever test or app emitted it, is formatted by the service's own JSON
formatter and kept. When the session ends, the text is scanned for what must never be logged:
bearer tokens and JWTs (the tests sign hundreds), private key material, and the patient ids of
the example records (every test that posts an example sends its ``patient_id``). A leak fails the
run; the figures go to ``out/reliability/log-scan.json`` either way.
"""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest

from service.http.logs import JsonFormatter

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "out" / "reliability" / "log-scan.json"
PATTERNS = {
    "jwt": re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\."),
    "bearer": re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/-]{10,}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
_stream = io.StringIO()
_handler = logging.StreamHandler(_stream)
_handler.setFormatter(JsonFormatter())


def _patient_ids() -> list[str]:
    ids = []
    for path in sorted((ROOT / "examples").glob("*.json")):
        patient = json.loads(path.read_text()).get("patient_id")
        if isinstance(patient, str):
            ids.append(patient)
    return ids


def leaks(text: str) -> list[str]:
    """What in ``text`` must not be there: pattern names and patient ids, each once."""
    found = [name for name, pattern in PATTERNS.items() if pattern.search(text)]
    return found + [pid for pid in _patient_ids() if pid in text]


def pytest_sessionstart(session: pytest.Session) -> None:
    logging.getLogger("service").addHandler(_handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    logging.getLogger("service").removeHandler(_handler)
    text = _stream.getvalue()
    found = leaks(text)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"lines": text.count("\n"), "bytes": len(text),
                                  "leaks": found}, indent=2) + "\n")
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nLOG SCAN: the service logged what it must not: {found} (see {REPORT})")
