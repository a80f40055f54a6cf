"""CDS Hooks 2.0: discovery, the service call (cards, prefetch edge cases, 412) and feedback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds.features import BY_NAME
from service.ehr.prefetch import TEMPLATES
from service.store import assessments, audit, cards, feedback, get_store
from tests.local_http import QuietHandler
from tests.service_fixtures import hook_call, observation, quantity, runner_prefetch, searchset

URL = "/cds-services/gmed-driver"


def call(client: FlaskClient, body: dict[str, Any], url: str = URL) -> Any:
    return client.post(url, json=body)


def test_discovery_lists_both_hooks_with_prefetch_templates(client: FlaskClient) -> None:
    services = client.get("/cds-services").get_json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {
        ("gmed-driver", "patient-view"), ("gmed-driver-encounter", "encounter-start")}
    for s in services:
        assert s["title"] and s["description"]
        assert s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "http://loinc.org|72514-3" in s["prefetch"]["observations"]
        assert "_sort=-date" in s["prefetch"]["observations"]
        assert s["prefetch"]["conditions"].startswith("Condition?patient={{context.patientId}}")
        assert "questionnaire=" in s["prefetch"]["intake"]


def test_every_contract_finding_is_in_the_observation_template() -> None:
    for name in ("bmi_kg_m2", "trendelenburg_sign", "running_pelvic_drop_deg"):
        c = BY_NAME[name].coding
        assert f"{c.system}|{c.code}" in "".join(
            t for k, t in TEMPLATES.items() if k.startswith("observations"))


def test_call_returns_one_card_per_complaint_within_spec(client: FlaskClient) -> None:
    response = call(client, hook_call())
    assert response.status_code == 200
    [card] = response.get_json()["cards"]
    assert len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"] and card["source"]["url"].endswith("/v1/model/card")
    assert len(card["uuid"]) == 36
    assert "**Why**" in card["detail"] and "SIMULATED" in card["detail"]
    [link] = card["links"]
    assert link["type"] == "smart" and "/ui/assessments/" in link["url"]
    assert json.loads(link["appContext"])["assessmentId"] in link["url"]
    assert all(r["display"] for r in card["overrideReasons"])


def test_indicator_follows_the_band(app: Flask) -> None:
    [card] = app.test_client().post(URL, json=hook_call()).get_json()["cards"]
    with app.app_context():
        [row] = get_store().rows(assessments)
    band = row["result"]["results"][0]["band"]
    assert card["indicator"] == ("warning" if band == "high" else "info")
    assert f"({band})" in card["detail"]


def test_encounter_start_runs_the_same_logic(client: FlaskClient) -> None:
    response = call(client, hook_call("encounter-start"), "/cds-services/gmed-driver-encounter")
    assert response.status_code == 200 and len(response.get_json()["cards"]) == 1


def test_suggestion_orders_the_next_best_assessment(client: FlaskClient) -> None:
    prefetch = runner_prefetch()
    prefetch["observations"] = None  # no exam yet: a test is worth ordering
    [card] = call(client, hook_call(prefetch=prefetch)).get_json()["cards"]
    [suggestion] = card["suggestions"]
    assert card["selectionBehavior"] == "at-most-one"
    [action] = suggestion["actions"]
    assert action["type"] == "create"
    request = action["resource"]
    assert request["resourceType"] == "ServiceRequest" and request["intent"] == "proposal"
    assert request["subject"] == {"reference": "Patient/p1"}
    assert "Next best assessment" in card["detail"]


def test_red_flag_gives_one_critical_card_without_probability(client: FlaskClient) -> None:
    prefetch = runner_prefetch()
    prefetch["observations"]["entry"].append(
        {"resource": observation("rf_fever", valueBoolean=True,
                                 effectiveDateTime="2026-02-01")})  # after the intake's "no"
    [card] = call(client, hook_call(prefetch=prefetch)).get_json()["cards"]
    assert card["indicator"] == "critical"
    assert "%" not in card["summary"] and "Red flag" in card["summary"]
    assert "Fever" in card["detail"]


def test_no_covered_complaint_gives_no_cards(client: FlaskClient) -> None:
    prefetch = runner_prefetch()
    prefetch["conditions"] = searchset()
    prefetch["intake"] = None
    assert call(client, hook_call(prefetch=prefetch)).get_json() == {"cards": []}


# ---------------------------------------------------------------- prefetch edge cases


def _without(key: str) -> dict[str, Any]:
    prefetch = runner_prefetch()
    del prefetch[key]
    return prefetch


def _outcome() -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "timeout"}]}


def _assert_412(response: Any, key: str) -> None:
    assert response.status_code == 412
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert any(f"prefetch.{key}" in i["expression"] for i in body["issue"])


def test_missing_patient_key_without_fhir_access_is_412(client: FlaskClient) -> None:
    _assert_412(call(client, hook_call(prefetch=_without("patient"))), "patient")


def test_null_patient_is_412(client: FlaskClient) -> None:
    prefetch = runner_prefetch()
    prefetch["patient"] = None
    _assert_412(call(client, hook_call(prefetch=prefetch)), "patient")


def test_patient_operation_outcome_is_read_as_not_prefetched(client: FlaskClient) -> None:
    prefetch = runner_prefetch()
    prefetch["patient"] = _outcome()
    _assert_412(call(client, hook_call(prefetch=prefetch)), "patient")


def test_no_prefetch_at_all_is_412(client: FlaskClient) -> None:
    body = hook_call()
    del body["prefetch"]
    _assert_412(call(client, body), "patient")


def test_missing_conditions_is_412_unless_the_intake_names_complaints(client: FlaskClient) -> None:
    _assert_412(call(client, hook_call(prefetch=_without("conditions"))), "conditions")
    prefetch = _without("conditions")
    prefetch["intake"]["entry"][0]["resource"]["item"][0]["item"].append(
        {"linkId": "complaints", "answer": [{"valueCoding": {"code": "itbs"}}]})
    response = call(client, hook_call(prefetch=prefetch))
    assert response.status_code == 200
    assert "IT band" in response.get_json()["cards"][0]["summary"]


def test_null_conditions_means_none_on_record(client: FlaskClient) -> None:
    prefetch = runner_prefetch()
    prefetch["conditions"] = None
    assert call(client, hook_call(prefetch=prefetch)).get_json() == {"cards": []}


def test_empty_observation_bundle_is_assessed_on_what_there_is(client: FlaskClient) -> None:
    prefetch = runner_prefetch()
    prefetch["observations"] = searchset()
    response = call(client, hook_call(prefetch=prefetch))
    assert response.status_code == 200
    assert "not available" not in response.get_json()["cards"][0]["detail"]


@pytest.mark.parametrize("variant", ["missing", "outcome"])
def test_unavailable_observations_are_noted_on_the_card(client: FlaskClient, variant: str) -> None:
    prefetch = _without("observations") if variant == "missing" else runner_prefetch()
    if variant == "outcome":
        prefetch["observations"] = _outcome()
    [card] = call(client, hook_call(prefetch=prefetch)).get_json()["cards"]
    assert "Observations were not available" in card["detail"]


def test_prefetch_value_that_is_not_a_resource_is_400(client: FlaskClient) -> None:
    prefetch = runner_prefetch()
    prefetch["patient"] = "Patient/p1"
    response = call(client, hook_call(prefetch=prefetch))
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["prefetch.patient"]


class _FhirServer(QuietHandler):
    """A loopback FHIR server answering the prefetch queries with the runner's data."""

    data: ClassVar[dict[str, Any]] = {}
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        key = next((k for k, t in TEMPLATES.items() if self.path.split("/fhir/")[1].startswith(
            t.split("{{")[0].rstrip("/?"))), None)
        self.send_body(json.dumps(self.data.get(key or "", {})).encode(),
                       content_type="application/fhir+json")


@pytest.fixture
def fhir_server() -> Iterator[str]:
    _FhirServer.data, _FhirServer.seen = runner_prefetch(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FhirServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    server.shutdown()
    server.server_close()


def _with_fhir_access(server: str, prefetch: dict[str, Any]) -> dict[str, Any]:
    return hook_call(prefetch=prefetch, fhirServer=server, fhirAuthorization={
        "access_token": "opaque-fhir-token", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "gmed-cds"})


def test_missing_keys_are_fetched_from_an_allowlisted_fhir_server(
        make_app: Callable[..., Flask], fhir_server: str) -> None:
    client = make_app(FHIR_SERVER_ALLOWLIST=[fhir_server]).test_client()
    response = call(client, _with_fhir_access(fhir_server, _without("patient")))
    assert response.status_code == 200 and len(response.get_json()["cards"]) == 1
    [(path, authorization)] = _FhirServer.seen
    assert path == "/fhir/Patient/p1" and authorization == "Bearer opaque-fhir-token"


def test_fhir_server_not_on_the_allowlist_is_never_called(
        client: FlaskClient, fhir_server: str) -> None:
    _assert_412(call(client, _with_fhir_access(fhir_server, _without("patient"))), "patient")
    assert _FhirServer.seen == []


# ---------------------------------------------------------------- request validation


@pytest.mark.parametrize("mutate,field", [
    (lambda b: b.update(hook="order-sign"), "hook"),
    (lambda b: b.pop("hookInstance"), "hookInstance"),
    (lambda b: b.pop("context"), "context"),
    (lambda b: b["context"].pop("patientId"), "context.patientId"),
    (lambda b: b["context"].pop("userId"), "context.userId"),
    (lambda b: b.update(fhirAuthorization={"access_token": "t", "token_type": "Bearer"}),
     "fhirServer"),
])
def test_malformed_call_is_400_naming_the_field(client: FlaskClient, mutate: Callable[..., Any],
                                                field: str) -> None:
    body = hook_call()
    mutate(body)
    response = call(client, body)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == [field]


def test_encounter_start_requires_the_encounter_id(client: FlaskClient) -> None:
    body = hook_call("encounter-start")
    del body["context"]["encounterId"]
    response = call(client, body, "/cds-services/gmed-driver-encounter")
    assert response.status_code == 400


def test_value_in_a_wrong_unit_is_set_aside_not_misread(app: Flask) -> None:
    """Issue 14: one unusable Observation never loses the card (it was a 422 for the call)."""
    prefetch = runner_prefetch()
    prefetch["observations"]["entry"][0]["resource"] = observation(
        "bmi_kg_m2", id="bmi-1", **quantity(23.0, "[lb_av]/[in_i]2"))
    response = call(app.test_client(), hook_call(prefetch=prefetch))
    assert response.status_code == 200
    [card] = response.get_json()["cards"]
    assert "Observation/bmi-1 set aside" in card["detail"]
    with app.app_context():
        [row] = get_store().rows(assessments)
    assert "bmi_kg_m2" not in row["inputs"]
    codes = [w["code"] for w in row["result"]["warnings"]]
    assert [c for c in codes if c != "red-flag-screen-incomplete"] == ["resource-set-aside"]


def test_prefetch_about_another_patient_is_rejected(client: FlaskClient) -> None:
    body = hook_call()
    body["context"]["patientId"] = "someone-else"
    assert call(client, body).status_code == 422


def test_unknown_service_is_404(client: FlaskClient) -> None:
    assert call(client, hook_call(), "/cds-services/nope").status_code == 404


# ---------------------------------------------------------------- store and feedback


def test_assessment_and_cards_are_committed_with_a_pseudonymous_reference(app: Flask) -> None:
    [card] = app.test_client().post(URL, json=hook_call()).get_json()["cards"]
    with app.app_context():
        store = get_store()
        [row] = store.rows(assessments)
        assert row["patient_ref"] == store.pseudonym("p1") and row["patient_ref"] != "p1"
        assert "p1" not in json.dumps(row["inputs"])
        assert [c["uuid"] for c in store.rows(cards)] == [card["uuid"]]
        assert store.rows(audit)[-1]["assessment_id"] == row["id"]


def test_feedback_is_stored_for_our_cards(app: Flask) -> None:
    client = app.test_client()
    [card] = client.post(URL, json=hook_call()).get_json()["cards"]
    response = client.post(f"{URL}/feedback", json={"feedback": [
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-10T10:00:00Z",
         "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "seen"}}]})
    assert response.status_code == 200 and response.get_json() == {"stored": 1}
    with app.app_context():
        [row] = get_store().rows(feedback)
    assert row["outcome"] == "overridden" and row["override_reason"]["reason"]["code"]


def test_accepted_feedback_needs_the_accepted_suggestions(client: FlaskClient) -> None:
    [card] = client.post(URL, json=hook_call()).get_json()["cards"]
    response = client.post(f"{URL}/feedback", json={"feedback": [
        {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-01-10T10:00:00Z"}]})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["feedback[0].acceptedSuggestions"]


def test_feedback_for_an_unknown_card_is_rejected(client: FlaskClient) -> None:
    response = client.post(f"{URL}/feedback", json={"feedback": [
        {"card": "no-such-card", "outcome": "overridden",
         "outcomeTimestamp": "2026-01-10T10:00:00Z"}]})
    assert response.status_code == 422
