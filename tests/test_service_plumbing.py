"""The request path's plumbing, made cheaper, keeps what it promised: bounded metric series,
unique request ids in UUID form, JSON log lines, the FHIR resource count, fetched pages read
strictly."""

from __future__ import annotations

import collections
import http.client
import io
import json
import logging
import os
import uuid
from typing import Any

from flask import Flask

from service.http.limits import count_resources
from service.http.logs import JsonFormatter, _is_uuid
from tests.service_fixtures import iter_json_lines, runner_prefetch, searchset


def test_invented_methods_are_counted_as_other_not_as_new_series(app: Flask) -> None:
    client = app.test_client()
    for method in ("FOOBAR", "BAZQUUX", "ZZZZZZ"):
        assert client.open("/ops/ping", method=method).status_code == 405
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gmed_http_requests_total{method="OTHER",route="<unmatched>",status="405"} 3.0' in text
    assert "FOOBAR" not in text and "BAZQUUX" not in text


def test_known_methods_keep_their_own_series(app: Flask) -> None:
    client = app.test_client()
    client.get("/ops/ping")
    client.get("/ops/ping")
    client.open("/ops/ping", method="DELETE")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'gmed_http_requests_total{method="GET",route="/ops/ping",status="200"} 2.0' in text
    assert 'gmed_http_requests_total{method="DELETE",route="<unmatched>",status="405"} 1.0' in text
    assert 'gmed_http_errors_total{route="<unmatched>",status="405"} 1.0' in text


def test_request_ids_are_distinct_uuids_and_an_incoming_one_is_echoed(app: Flask) -> None:
    client = app.test_client()
    ids = [client.get("/ops/ping").headers["X-Request-Id"] for _ in range(50)]
    assert len(set(ids)) == 50
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    mine = str(uuid.uuid4())
    assert client.get("/ops/ping", headers={"X-Request-Id": mine}).headers["X-Request-Id"] == mine
    forged = client.get("/ops/ping", headers={"X-Request-Id": "free text"})
    assert _is_uuid(forged.headers["X-Request-Id"]) and "free" not in forged.headers["X-Request-Id"]


def test_a_forked_worker_draws_its_own_request_ids() -> None:
    from service.http.logs import _ids

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a gunicorn worker would hand out
        os.write(write, _ids.next().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    parent = _ids.next()
    assert _is_uuid(child) and child.rsplit("-", 1)[0] != parent.rsplit("-", 1)[0]


def _line(**extra: Any) -> dict[str, Any]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("service.test-plumbing")
    logger.addHandler(handler)
    try:
        logger.warning("request", extra=extra)
    finally:
        logger.removeHandler(handler)
    (line,) = iter_json_lines(stream.getvalue())
    return line


def test_log_lines_keep_safe_fields_only_and_encode_any_value() -> None:
    line = _line(route="/ops/ping", status=200, count=2**70, record={"patient_id": "p-secret"},
                 duration_ms=uuid.UUID(int=1))
    assert line["route"] == "/ops/ping" and line["status"] == 200 and line["count"] == 2**70
    assert line["duration_ms"] == str(uuid.UUID(int=1))  # what it cannot encode, as its str
    assert "record" not in line and line["ts"].endswith("Z") and len(line["ts"]) == 24


def test_resources_are_counted_in_any_mapping_and_list_but_not_elsewhere() -> None:
    prefetch = runner_prefetch(n_extra=40)
    n = count_resources(prefetch, 10**6)
    assert n == 1 + sum(1 + len(prefetch[k]["entry"]) for k in prefetch if k != "patient")
    assert count_resources(collections.OrderedDict(prefetch), 10**6) == n

    class Entries(list[Any]):
        pass

    assert count_resources(Entries([{"resourceType": "Patient"}, "Patient", 3]), 10) == 1
    assert count_resources(({"resourceType": "Patient"},), 10) == 0  # a tuple is not JSON
    assert count_resources({"resourceType": 7, "x": [{"resourceType": "A"}]}, 10) == 1
    assert count_resources(searchset(*[{"resourceType": "A"}] * 50), 9) == 10  # stops past 9


def test_a_fetched_page_that_is_not_strict_json_makes_its_key_unavailable(
        make_app: Any, monkeypatch: Any) -> None:
    from service.ehr import prefetch
    from service.http import httpget

    app = make_app(FHIR_SERVER_ALLOWLIST=["https://ehr.example.org/fhir"])

    def answer(url: str, headers: Any, timeout: float, cap: int, **kwargs: Any) -> Any:
        body = (b'{"resourceType": "Patient", "weight": NaN}' if "Patient/" in url
                else json.dumps(searchset()).encode())
        return httpget.Fetched(200, http.client.HTTPMessage(), body)

    monkeypatch.setattr(httpget, "get", answer)
    call = {"hook": "patient-view", "context": {"patientId": "p1"}, "prefetch": {},
            "fhirServer": "https://ehr.example.org/fhir",
            "fhirAuthorization": {"access_token": "t", "token_type": "Bearer"}}
    with app.test_request_context("/"):
        gathered = prefetch.gather(call, allowlist=["https://ehr.example.org/fhir"], timeout=5)
    assert "patient" in gathered.unavailable and "conditions" in gathered.empty
