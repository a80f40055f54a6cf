"""Pins: our own JWT rules, not PyJWT's: a token may name where its keys live (``jku``) only
when that URL is allowlisted for its issuer, and every refusal is logged with its reason.

The ``jku`` trick: an attacker signs a token with their own key and points ``jku`` at their own
key set. Refused, and the attacker's URL is never fetched; the allowlisted URL, same token
shape, is accepted (so the refusal is the allowlist's, not something else's).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from tests.service_fixtures import iter_json_lines, service_logs
from tests.test_service_jwks import (
    ROUTE,
    Ehr,
    JwksEndpoint,
    clock,
    ehr,
    endpoint,
    jku_app,
    reasons,
    status,
)

__all__ = ["clock", "ehr", "endpoint", "jku_app", "service_logs"]


@pytest.fixture
def attacker() -> Iterator[JwksEndpoint]:
    ep = JwksEndpoint()
    yield ep
    ep.release.set()
    ep.down()


def test_the_allowlisted_jku_is_used(jku_app: Callable[..., Flask], endpoint: JwksEndpoint,
                                     ehr: Ehr) -> None:
    endpoint.body = ehr.jwks("ec-1")
    assert status(jku_app(), ehr.token("ec-1", endpoint.url)) == 200
    assert endpoint.gets == 1


@pytest.mark.parametrize("suffix", ["", "/", "?x=1", "#k"])
def test_a_jku_not_allowlisted_for_the_issuer_is_refused_and_never_fetched(
        jku_app: Callable[..., Flask], endpoint: JwksEndpoint, attacker: JwksEndpoint, ehr: Ehr,
        service_logs: io.StringIO, suffix: str) -> None:
    """The attacker's own key set (it holds the key the token is signed with) is never asked;
    nor is the allowlisted URL with anything appended."""
    rogue = Ehr()
    attacker.body = rogue.jwks("ec-1")
    endpoint.body = ehr.jwks("ec-1")
    url = attacker.url if not suffix else endpoint.url + suffix
    assert status(jku_app(), rogue.token("ec-1", url)) == 401
    assert attacker.gets == 0 and endpoint.gets == 0
    assert reasons(service_logs)[-1] == "jku not allowlisted for issuer"


def test_a_refusal_is_logged_as_token_rejected_with_its_reason(
        jku_app: Callable[..., Flask], service_logs: io.StringIO) -> None:
    response = jku_app().test_client().get(ROUTE, headers={"Authorization": "Bearer x.y.z"})
    assert response.status_code == 401
    lines = [line for line in iter_json_lines(service_logs.getvalue()) if "reason" in line]
    assert lines and lines[-1]["reason"] == "malformed"
    assert "token rejected" in json.dumps(lines[-1])
