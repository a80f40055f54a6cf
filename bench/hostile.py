"""Small hostile bodies against the app, in-process on the shipped model: what each costs.

For each body: the bytes sent (gzipped, as the red team sent them), the status, the bytes of the
answer and the CPU seconds the request took (``time.process_time``, this process only). The
last one is a small CDS Hooks call whose FHIR server (a loopback one, started here) answers
five linked pages of 200,000 resources to every query (6.6 MB each): fetched resources count
against ``FHIR_MAX_RESOURCES``.
Issue #18, findings 3 and 4 (before: a 1 KB ``[0,0,...]`` cost 18-20 s of CPU; a 1.1 KB body
got a 58.6 MB 422; the fetch case took 7 s).

    .venv/bin/python bench/hostile.py
"""

from __future__ import annotations

import gzip
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project's ``service`` package, not bench/service.py

from flask import Flask  # noqa: E402

from service import create_app  # noqa: E402

EXAMPLES = ROOT / "examples"
RECORD = json.loads((EXAMPLES / "runner_pfp_hip_driven.json").read_text())
ZEROS = [0] * 500_000  # 1,000,000 bytes of JSON: under the 1 MiB cap


def _questionnaire(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": items}


BODIES: dict[str, Callable[[], Any]] = {
    "[0,0,...] (500k items)": lambda: ZEROS,
    "Bundle, one entry of 500k items": lambda: {"resourceType": "Bundle",
                                                "entry": [{"resource": ZEROS}]},
    "record, complaints of 500k items": lambda: {**RECORD, "complaints": ZEROS},
    "record, 40k unknown keys": lambda: {**RECORD, **{f"k{i}": 0 for i in range(40_000)}},
    "QuestionnaireResponse, 15k foreign questions": lambda: _questionnaire(
        [{"linkId": f"q{i}", "answer": [{"valueString": "x"}]} for i in range(15_000)]),
}


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the service hangs up on a page it refuses: not news here


def _page_server(resources: int, pages: int) -> tuple[ThreadingHTTPServer, str]:
    """Every query: ``pages`` linked pages, each a Bundle of ``resources`` tiny resources."""
    entries = [{"resource": {"resourceType": "Basic"}}] * resources

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            number = int(self.path.rsplit("page=", 1)[1]) if "page=" in self.path else 1
            base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
            bundle: dict[str, Any] = {"resourceType": "Bundle", "entry": entries}
            if number < pages:
                bundle["link"] = [{"relation": "next", "url": f"{base}/Basic?page={number + 1}"}]
            page = json.dumps(bundle, separators=(",", ":")).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = _Quiet(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/fhir"


def _send(app: Flask, path: str, body: Any, label: str) -> None:
    data = gzip.compress(json.dumps(body, separators=(",", ":")).encode())
    started = time.process_time()
    response = app.test_client().post(path, data=data, content_type="application/json",
                                      headers={"Content-Encoding": "gzip"})
    cpu = time.process_time() - started
    print(f"{label:48s} sent {len(data):>7,d} B  -> {response.status_code}  "
          f"{len(response.data):>7,d} B answer  {cpu:6.3f} s CPU")


def main() -> None:
    httpd, fhir = _page_server(200_000, 5)
    with tempfile.TemporaryDirectory(prefix="gmed-hostile-") as tmp:
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/store.sqlite3", "AUTH": "off",
                          "UI_AUTH": "off", "ENVIRONMENT": "development",
                          "PSEUDONYM_SECRET": "bench", "FHIR_SERVER_ALLOWLIST": [fhir],
                          "FHIR_TIMEOUT": 30.0})
        for label, make in BODIES.items():
            _send(app, "/v1/assessments", make(), label)
        call = {"hook": "patient-view", "hookInstance": "bench-1",
                "context": {"patientId": "p1", "userId": "Practitioner/1"},
                "fhirServer": fhir, "fhirAuthorization": {"access_token": "t"}}
        _send(app, "/cds-services/gmed-driver", call, "hook call, FHIR server sends 5 x 200k resources")
    httpd.shutdown()


if __name__ == "__main__":
    main()
