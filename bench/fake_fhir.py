"""A local FHIR server holding one heavy patient, for the service benchmarks only.

``p1`` has ``observations`` Observations (exam findings, squat video, dynamometry and a long
history of pain scores, each finding re-measured over the years) and ``conditions`` Conditions
(the three presenting complaints, recorded again at many visits), plus the Patient and one
completed intake form. Searches are answered in pages linked by ``next``, as a FHIR server pages a
``searchset`` (``_count`` entries, at most :data:`MAX_COUNT`, else ``page_size``: HAPI FHIR's
defaults), so the service must follow them. Every
search is filtered by its ``code`` parameter, as a FHIR server does.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cds.fhir import COMPLAINT_CODES
from tests.service_fixtures import observation, quantity, runner_prefetch, searchset

MAX_COUNT = 200
FINDINGS = (
    ("bmi_kg_m2", lambda i: quantity(22.0 + (i % 7) / 10, "kg/m2")),
    ("pain_nrs", lambda i: {"valueInteger": 3 + i % 5}),
    ("hip_abduction_left_nm_per_kg", lambda i: quantity(1.45 + (i % 9) / 100, "N.m/kg")),
    ("hip_abduction_right_nm_per_kg", lambda i: quantity(1.0 + (i % 9) / 100, "N.m/kg")),
    ("trendelenburg_sign", lambda i: {"valueBoolean": i % 3 == 0}),
    ("trochanter_tenderness", lambda i: {"valueBoolean": i % 2 == 0}),
    ("single_leg_squat_knee_fppa_deg", lambda i: quantity(15.0 + i % 8, "deg")),
    ("single_leg_squat_pelvic_drop_deg", lambda i: quantity(7.0 + (i % 5) / 2, "deg")),
)


def _date(i: int) -> str:
    """Newest first, as ``_sort=-date`` asks: one visit a week going back from 2026-01-10."""
    return f"{2026 - (i // 52):04d}-{12 - (i // 4) % 12:02d}-{1 + (i * 7) % 28:02d}"


def heavy_patient(observations: int = 500, conditions: int = 50) -> dict[str, list[Any]]:
    """The resources of each query of the heavy patient."""
    base = runner_prefetch()
    obs = [observation(FINDINGS[i % len(FINDINGS)][0], **FINDINGS[i % len(FINDINGS)][1](i),
                       id=f"o{i}", effectiveDateTime=_date(i // len(FINDINGS)))
           for i in range(observations)]
    codes = [code for group in COMPLAINT_CODES.values() for code in group]
    conds = [{"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": "Patient/p1"},
              "clinicalStatus": {"coding": [{"code": "active"}]},
              "recordedDate": _date(i),
              "code": {"coding": [{"system": codes[i % len(codes)][0],
                                   "code": codes[i % len(codes)][1]}]}}
             for i in range(conditions)]
    return {"Patient": [base["patient"]], "Observation": obs, "Condition": conds,
            "QuestionnaireResponse": [base["intake"]["entry"][0]["resource"]]}


class FakeFhirServer:
    """Serves :func:`heavy_patient` on a free loopback port until :meth:`close`."""

    def __init__(self, observations: int = 500, conditions: int = 50,
                 page_size: int = 20) -> None:
        data = heavy_patient(observations, conditions)
        self.requests = 0
        outer = self
        cache: dict[str, bytes] = {}  # answers encoded once: the server's cost is not measured

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests += 1
                body = cache.get(self.path)
                if body is None:
                    body = cache[self.path] = json.dumps(self._answer()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _answer(self) -> dict[str, Any]:
                parts = urllib.parse.urlsplit(self.path)
                kind = parts.path.rstrip("/").split("/")[-1]
                if kind == "p1":
                    return data["Patient"][0]
                query = urllib.parse.parse_qs(parts.query)
                offset = int(query.get("_offset", ["0"])[0])
                items = data.get(kind, [])
                if "code" in query:  # a code search: only the resources coded as asked
                    asked = set(query["code"][0].split(","))
                    items = [r for r in items if any(f"{c['system']}|{c['code']}" in asked
                                                     for c in r["code"]["coding"])]
                size = min(int(query.get("_count", [str(page_size)])[0]), MAX_COUNT)
                page = searchset(*items[offset:offset + size])
                page["total"] = len(items)
                if offset + size < len(items):
                    nxt = dict(query, _offset=[str(offset + size)])
                    page["link"] = [{"relation": "next", "url": (
                        f"http://localhost:{outer.port}{parts.path}?"
                        + urllib.parse.urlencode(nxt, doseq=True))}]
                return page

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.base = f"http://localhost:{self.port}/fhir"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
