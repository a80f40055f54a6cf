"""Orderable codes of the clinical tests the cards propose (the ``ServiceRequest.code``).

Proposed mapping, keyed by the procedure text of the contract (``Feature.procedure`` in
:mod:`cds.features`, which other work owns: once merged, these codes belong beside the
procedures there). Every procedure has a local code of ``{BASE}/CodeSystem/procedures`` (served,
with the text as display); a SNOMED CT procedure code is added only where one was verified:
``113011001 |Palpation (procedure)|`` (used by HL7 IGs, e.g. the vital-signs body-position and
method value sets). Dynamometry, the single-leg squat and running video analysis, the
Trendelenburg and single-leg-stance tests, the FPI-6, the knee effusion test and the straight-leg
raise have no SNOMED CT code we could verify offline: local code and text only.
"""

from __future__ import annotations

from typing import Any

from cds.features import FEATURES, SNOMED
from cds.fhir import BASE

PROCEDURE_SYSTEM = f"{BASE}/CodeSystem/procedures"

# procedure text (as in the contract) -> (local code, verified SNOMED CT (code, display) or None)
ORDERABLES: dict[str, tuple[str, tuple[str, str] | None]] = {
    "Hand-held dynamometry of isometric hip abduction, both sides": ("hip-abduction-dynamometry",
                                                                     None),
    "Single-leg squat, frontal-plane video (knee FPPA, pelvic drop, trunk lean)":
        ("single-leg-squat-video", None),
    "Trendelenburg test (single-leg stance, observe the pelvis)": ("trendelenburg-test", None),
    "30-second single-leg stance test": ("single-leg-stance-30s", None),
    "Palpation of the greater trochanter": ("greater-trochanter-palpation",
                                            ("113011001", "Palpation (procedure)")),
    "Foot Posture Index (FPI-6)": ("foot-posture-index", None),
    "Knee effusion test (sweep / patellar tap)": ("knee-effusion-test", None),
    "Straight-leg raise": ("straight-leg-raise", None),
    "Running gait analysis (video or sensors), frontal plane": ("running-gait-analysis", None),
}


def procedures() -> list[str]:
    """Every procedure the contract names, in contract order."""
    return list(dict.fromkeys(f.procedure for f in FEATURES if f.procedure))


def order_code(procedure: str) -> dict[str, Any]:
    """The ``ServiceRequest.code`` of a procedure: SNOMED CT where verified, our local code,
    and the text. An unknown procedure keeps its text only."""
    known = ORDERABLES.get(procedure)
    if known is None:
        return {"text": procedure}
    local, snomed = known
    coding = [{"system": SNOMED, "code": snomed[0], "display": snomed[1]}] if snomed else []
    coding.append({"system": PROCEDURE_SYSTEM, "code": local, "display": procedure})
    return {"coding": coding, "text": procedure}


def procedure_concepts() -> dict[str, str]:
    """The local procedure codes and their displays (the ``procedures`` CodeSystem)."""
    return {ORDERABLES[p][0]: p for p in procedures() if p in ORDERABLES}
