"""Generated FHIR narratives (``text``): a short human-readable summary of a resource.

Every resource the product emits carries one (``dom-6``). The XHTML uses only the elements and
attributes FHIR allows (``txt-1``: ``div``, ``p``, ``b``, ``ul``, ``li``, ``table``...; no script,
no style, no event attribute) and is never empty (``txt-2``); every value is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

XHTML = "http://www.w3.org/1999/xhtml"


def _display(concept: Any) -> str:
    if not isinstance(concept, Mapping):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    codings = concept.get("coding") or []
    return ", ".join(str(c.get("display") or c.get("code")) for c in codings if isinstance(c, Mapping))


def _lines(resource: Mapping[str, Any]) -> Iterable[str]:
    """The facts worth reading, by resource type (plain text; escaped by the caller)."""
    kind = resource.get("resourceType")
    if kind == "RiskAssessment":
        yield f"Status: {resource.get('status')}; method: {_display(resource.get('method'))}"
        for p in resource.get("prediction", []):
            pct = round(100 * float(p.get("probabilityDecimal", 0)))
            yield f"{_display(p.get('outcome'))}: {pct}% ({_display(p.get('qualitativeRisk'))})"
        for n in resource.get("note", []):
            yield str(n.get("text", ""))
    elif kind in ("CodeSystem", "ValueSet"):
        yield f"{resource.get('url')} (version {resource.get('version', '-')})"
        for c in resource.get("concept", []):
            yield f"{c.get('code')}: {c.get('display', '')}"
        for inc in resource.get("compose", {}).get("include", []):
            yield f"All codes of {inc.get('system')}"
    elif kind == "Questionnaire":
        yield f"{resource.get('url')} (version {resource.get('version')})"
        for group in resource.get("item", []):
            yield f"{group.get('text')}: {len(group.get('item', []))} questions"
    elif kind == "ServiceRequest":
        yield f"Proposed order: {_display(resource.get('code'))}"
        for r in resource.get("reasonCode", []):
            yield f"Reason: {_display(r)}"
    elif kind == "CapabilityStatement":
        yield f"FHIR {resource.get('fhirVersion')}; formats: {', '.join(resource.get('format', []))}"
        for rest in resource.get("rest", []):
            for r in rest.get("resource", []):
                yield (f"{r.get('type')}: "
                       + ", ".join(i.get("code", "") for i in r.get("interaction", [])))
    elif kind == "OperationOutcome":
        for issue in resource.get("issue", []):
            yield f"{issue.get('severity')} ({issue.get('code')}): {issue.get('diagnostics', '')}"


def narrative(resource: Mapping[str, Any], title: str | None = None) -> dict[str, str]:
    """A ``text`` element (status ``generated``) summarising ``resource``."""
    heading = title or str(resource.get("title") or resource.get("name")
                           or resource.get("resourceType"))
    items = "".join(f"<li>{escape(line, quote=False)}</li>" for line in _lines(resource) if line)
    body = f"<p><b>{escape(heading, quote=False)}</b></p>" + (f"<ul>{items}</ul>" if items else "")
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body}</div>'}


def with_narrative(resource: dict[str, Any], title: str | None = None) -> dict[str, Any]:
    """``resource`` with its generated narrative placed after ``id``/``meta`` (in place)."""
    text = narrative(resource, title)
    ordered: dict[str, Any] = {}
    for key in ("resourceType", "id", "meta"):
        if key in resource:
            ordered[key] = resource[key]
    ordered["text"] = text
    ordered.update({k: v for k, v in resource.items() if k not in ordered})
    resource.clear()
    resource.update(ordered)
    return resource
