"""JSON out: encoded once (stored and sent as the same text) and by orjson, with the same meaning
as the standard encoder."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest
from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider
from flask.testing import FlaskClient

from service.http.jsontext import EncodedJSON, dumps, encode, encode_object, object_response


def test_an_encoded_object_passes_the_store_serialiser_untouched() -> None:
    text = encode_object({"a": 1, "b": [1.5, None, "é"]})
    assert isinstance(text, EncodedJSON) and encode(text) is text
    assert json.loads(encode({"a": 1})) == {"a": 1}


def test_object_response_puts_the_first_keys_first_and_keeps_the_rest(app: Flask) -> None:
    rest = encode_object({"action": "assess", "results": [{"probability": 0.4321}]})
    with app.app_context():
        response = object_response({"id": "a1"}, rest, 201, {"Location": "/v1/assessments/a1"})
    assert response.status_code == 201 and response.mimetype == "application/json"
    assert response.headers["Location"] == "/v1/assessments/a1"
    body = json.loads(response.get_data())
    assert body == {"id": "a1", "action": "assess", "results": [{"probability": 0.4321}]}
    assert list(body) == ["id", "action", "results"]


@pytest.mark.parametrize("value", [
    {"z": 1, "a": [0.1, 1e-7, 123456789.125, -0.0], "u": "naïve ✓ \u2028", "n": None, "t": True},
    {1: "integer key"},
    {"huge": 2 ** 70},  # beyond orjson's 64 bits: the standard encoder takes over
    [],
])
def test_fast_encoding_means_what_the_standard_encoder_means(value: object) -> None:
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


def test_jsonify_keeps_key_order_and_flask_handling_of_dates_and_uuids(app: Flask) -> None:
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = {"z": 1, "a": 2, "when": stamp, "day": date(2026, 1, 2), "id": ident}
    with app.app_context():
        body = jsonify(value).get_data(as_text=True)
    assert json.loads(body) == json.loads(DefaultJSONProvider(app).dumps(value))
    assert list(json.loads(body)) == ["z", "a", "when", "day", "id"]


def test_an_assessment_is_stored_as_the_text_it_was_answered_with(
        client: FlaskClient, runner_pfp: dict[str, object]) -> None:
    response = client.post("/v1/assessments", json=runner_pfp)
    assert response.status_code == 201
    sent = response.get_json()
    stored = client.get(f"/v1/assessments/{sent['id']}").get_json()
    assert stored == sent
