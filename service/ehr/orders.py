"""Orderable codes of the clinical tests the cards propose (the ``ServiceRequest.code``).

The codes live beside the procedures in the contract (:data:`cds.codes.ORDERABLES`): every
procedure has a local code of ``{BASE}/CodeSystem/procedures`` (served, with the procedure text
as display), and a SNOMED CT procedure code where one was verified (palpation, 113011001). This
module only turns them into FHIR.
"""

from __future__ import annotations

from typing import Any

from cds.codes import ORDERABLES
from cds.features import FEATURES
from cds.fhir import BASE

PROCEDURE_SYSTEM = f"{BASE}/CodeSystem/procedures"


def procedures() -> list[str]:
    """Every procedure the contract names, in contract order."""
    return list(dict.fromkeys(f.procedure for f in FEATURES if f.procedure))


def order_code(procedure: str) -> dict[str, Any]:
    """The ``ServiceRequest.code`` of a procedure: SNOMED CT where verified, then our local
    code, and the text. An unknown procedure keeps its text only."""
    known = ORDERABLES.get(procedure)
    if known is None:
        return {"text": procedure}
    local, standard = known
    coding = [{"system": standard.system, "code": standard.code,
               "display": standard.display}] if standard else []
    coding.append({"system": PROCEDURE_SYSTEM, "code": local, "display": procedure})
    return {"coding": coding, "text": procedure}


def procedure_concepts() -> dict[str, str]:
    """The local procedure codes and their displays (the ``procedures`` CodeSystem)."""
    return {ORDERABLES[p][0]: p for p in procedures() if p in ORDERABLES}
