"""One content negotiation for every negotiating route, and one assess-and-record for every
route that assesses (API, CDS Hooks, the clinician page): stored, audited and counted alike."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.store import assessments, audit, get_store
from tests.conftest import load_example
from tests.service_fixtures import hook_call
from tests.test_ui import post

FHIR = "application/fhir+json"


def _stored(app: Flask) -> int:
    with app.app_context(), get_store().engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(assessments)).scalar_one())


@pytest.mark.parametrize("accept", ["text/html", "text/csv, application/xml;q=0.5"])
def test_accept_naming_nothing_offered_is_406_listing_the_offers_and_nothing_is_stored(
        app: Flask, client: FlaskClient, accept: str) -> None:
    response = client.post("/v1/assessments", json=load_example("cyclist_itbs"),
                           headers={"Accept": accept})
    assert response.status_code == 406
    message = response.get_json()["error"]["message"]
    assert "application/json" in message and FHIR in message
    assert _stored(app) == 0


@pytest.mark.parametrize(("accept", "media_type"), [
    ("*/*", "application/json"), ("", "application/json"),
    (f"application/json;q=0.5, {FHIR}", FHIR), (f"{FHIR};q=0.2, */*", "application/json"),
    ("text/html, */*;q=0.1", "application/json")])
def test_the_preferred_offer_wins_and_json_wins_a_tie(client: FlaskClient, accept: str,
                                                      media_type: str) -> None:
    created = client.post("/v1/assessments", json=load_example("cyclist_itbs"),
                          headers={"Accept": accept})
    assert created.status_code == 201 and created.mimetype == media_type
    read = client.get(created.headers["Location"], headers={"Accept": accept})
    assert read.status_code == 200 and read.mimetype == media_type


def test_a_stored_assessment_read_with_an_unoffered_type_is_406(client: FlaskClient) -> None:
    created = client.post("/v1/assessments", json=load_example("cyclist_itbs"))
    assert client.get(created.headers["Location"],
                      headers={"Accept": "text/html"}).status_code == 406


def test_every_route_that_assesses_stores_audits_and_counts_it_once(
        app: Flask, client: FlaskClient) -> None:
    assert client.post("/v1/assessments", json=load_example("cyclist_itbs")).status_code == 201
    assert client.post("/cds-services/gmed-driver", json=hook_call()).status_code == 200
    assert post(client, load_example("runner_pfp_hip_driven")).status_code == 303
    with app.app_context(), get_store().engine.connect() as conn:
        sources = sorted(conn.execute(select(assessments.c.source)).scalars())
        audited = sorted(conn.execute(select(audit.c.action)).scalars())
    assert sources == ["api", "cds-hooks", "ui"]
    assert [a for a in audited if a in sources] == sources
    text = client.get("/metrics").get_data(as_text=True)
    counted = sum(float(v) for v in re.findall(r"^gmed_predictions_total\{[^}]*\} (\S+)$",
                                               text, re.M))
    assert counted == 3  # cyclist: itbs; runner (hook and page): pfp
