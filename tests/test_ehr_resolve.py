"""EHR integration (issue 14): every URL and canonical an emitted resource names resolves on
the service; every emitted resource carries a valid generated narrative."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.conftest import load_example
from tests.service_fixtures import hook_call

FHIR = "application/fhir+json"
OURS = ("https://gmed-cds.org", "http://localhost")
# standard systems and definitions of other publishers (resolved by their own servers)
EXTERNAL = ("http://loinc.org", "http://snomed.info/sct", "http://hl7.org/fhir/",
            "http://terminology.hl7.org/CodeSystem/", "http://unitsofmeasure.org")


def _strings(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)
    elif isinstance(node, str):
        yield key, node


def urls(resource: Any) -> set[str]:
    """Every system, canonical and URL in ``resource`` (markdown links too)."""
    found = set()
    for key, value in _strings(resource):
        if key in ("system", "url", "questionnaire", "valueSet", "reference") \
                and value.startswith(("http://", "https://")):
            found.add(value)
        found.update(re.findall(r"https?://[^\s)\"'<>|&]+", value) if key != "div" else [])
    return found


def emitted(app: Flask) -> list[Any]:
    """One of every kind of resource and document the service emits to an EHR."""
    client = app.test_client()
    record = load_example("runner_pfp_hip_driven")
    created = client.post("/v1/assessments", json=record, headers={"Accept": FHIR}).get_json()
    cards = client.post("/cds-services/gmed-driver", json=hook_call()).get_json()["cards"]
    aid = created["id"]
    out = [created, cards, client.get("/cds-services").get_json(),
           client.get(f"/fhir/RiskAssessment/{aid}").get_json(),
           client.get("/fhir/metadata").get_json(),
           client.get("/fhir/Questionnaire?url=https://gmed-cds.org/fhir/Questionnaire/gmed-intake"
                      ).get_json(),
           client.get("/fhir/CodeSystem").get_json(),
           client.get("/fhir/ValueSet/override-reasons").get_json(),
           client.post("/v1/assessments", json={"age_years": 3},
                       headers={"Accept": FHIR}).get_json()]
    out.append(client.post("/v1/assessments", json=load_example("red_flag_trauma_swelling"),
                           headers={"Accept": FHIR}).get_json())
    out += [s["actions"][0]["resource"] for c in cards for s in c.get("suggestions", [])]
    return out


def _path(url: str) -> str:
    for prefix in OURS:
        if url.startswith(prefix):
            return url.removeprefix(prefix).split("|")[0]
    raise AssertionError(url)


def test_every_url_and_canonical_in_emitted_resources_resolves(app: Flask) -> None:
    found = set().union(*(urls(r) for r in emitted(app)))
    ours = {u for u in found if u.startswith(OURS)}
    assert {u for u in found - ours if not u.startswith(EXTERNAL)} == set()
    assert len(ours) >= 12  # the code systems, the Questionnaire, the model card, the page...
    client = app.test_client()
    unresolved = {u: client.get(_path(u)).status_code for u in sorted(ours)}
    assert {u: s for u, s in unresolved.items() if s != 200} == {}


@pytest.mark.parametrize("cid", ["complaints", "sex", "side", "activity_profile", "models",
                                 "rules", "topics", "override-reasons", "findings", "warnings"])
def test_each_local_code_system_is_served_at_its_canonical(app: Flask, cid: str) -> None:
    body = app.test_client().get(f"/fhir/CodeSystem/{cid}").get_json()
    assert body["resourceType"] == "CodeSystem"
    assert body["url"] == f"https://gmed-cds.org/fhir/CodeSystem/{cid}"
    assert body["concept"] and body["content"] == "complete"


def test_every_rule_raised_in_the_code_is_in_the_rules_code_system() -> None:
    from pathlib import Path

    from service.ehr.terminology import RULES
    source = "\n".join(p.read_text() for d in ("cds", "service") for p in Path(d).glob("*.py"))
    raised = set(re.findall(r"(?:FieldError|_field_error|\.error)\(\s*[^,()]+(?:\([^()]*\))?"
                            r"[^,()]*,\s*\"([A-Za-z-]+)\"", source))
    assert raised and raised - set(RULES) == set()


_ALLOWED_TAGS = {"div", "p", "b", "i", "ul", "ol", "li", "table", "tr", "td", "th", "thead",
                 "tbody", "span", "br", "code", "a", "h1", "h2", "h3"}


def _resources(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "resourceType" in node:
            yield node
        for v in node.values():
            yield from _resources(v)
    elif isinstance(node, list):
        for v in node:
            yield from _resources(v)


def test_every_emitted_resource_has_a_generated_narrative_passing_txt_1_and_txt_2(
        app: Flask) -> None:
    resources = [r for doc in emitted(app) for r in _resources(doc)
                 if r["resourceType"] not in ("Bundle",)]  # a Bundle is not a DomainResource
    kinds = {r["resourceType"] for r in resources}
    assert {"RiskAssessment", "CodeSystem", "Questionnaire", "ValueSet", "CapabilityStatement",
            "ServiceRequest", "OperationOutcome", "Device"} <= kinds
    for r in resources:
        if r["resourceType"] == "Device":
            continue  # contained in the RiskAssessment, whose narrative covers it (dom-6)
        text = r.get("text")
        assert text and text["status"] == "generated", r["resourceType"]
        div = text["div"]
        assert div.startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
        assert set(re.findall(r"</?([a-zA-Z0-9]+)", div)) <= _ALLOWED_TAGS  # txt-1
        assert not re.search(r"\son\w+=|<script|style=", div)  # txt-1: no script, no style
        assert re.sub(r"<[^>]+>", "", div).strip()  # txt-2: not empty
