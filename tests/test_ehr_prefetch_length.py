"""Issue 14: every expanded prefetch query stays well under the 2,048-character URL limit of
many servers (measured with a 64-character patient id and the server base included)."""

from __future__ import annotations

from service.ehr.prefetch import TEMPLATES, render

SERVER = "https://ehr.example.org/fhir/r4/"  # a typical base, counted in the URL
PATIENT = "p" * 64
LIMIT = 1_500  # "well under" 2,048: room for a longer base and proxies' own parameters


def expanded_lengths() -> dict[str, int]:
    return {k: len(SERVER + render(t, {"patientId": PATIENT})) for k, t in TEMPLATES.items()}


def test_every_expanded_query_is_well_under_the_limit() -> None:
    lengths = expanded_lengths()
    assert all(n < LIMIT for n in lengths.values()), lengths


def test_the_observation_queries_together_ask_for_every_finding() -> None:
    from cds.features import record_fields
    asked = "".join(t for k, t in TEMPLATES.items() if k.startswith("observations"))
    for f in record_fields():
        if f.role != "rows" and f.name not in ("age_years", "sex"):
            assert f"{f.coding.system}|{f.coding.code}," in asked.replace("&", ",")
