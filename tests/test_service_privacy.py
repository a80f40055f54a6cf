"""Privacy and accountability: the audit trail says who asked about whom and what they were told;
patient references are pseudonymised under a key derived from the configured secret (HKDF, its
own label), in the caller's issuer's namespace, and never stored raw."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask

from service.serving.model_host import get_model
from service.store import audit, get_store
from tests.service_fixtures import BASE, ISSUER, Signer, hook_call

PATIENT = "mrn-00417-privacy"


def _post(app: Flask, signer: Signer, path: str, body: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {signer.token(BASE + path)}"}
    return app.test_client().post(path, json=body, headers=headers)


def test_the_audit_trail_records_caller_patient_reference_model_version_and_outcome(
        secure_app: Flask, signer: Signer, runner_pfp: dict[str, Any]) -> None:
    created = _post(secure_app, signer, "/v1/assessments", {**runner_pfp, "patient_id": PATIENT})
    assert created.status_code == 201
    call = hook_call()
    call["context"]["patientId"] = PATIENT
    call["prefetch"]["patient"]["id"] = PATIENT
    for bundle in ("observations", "conditions", "intake"):
        for entry in call["prefetch"][bundle]["entry"]:
            entry["resource"]["subject"] = {"reference": f"Patient/{PATIENT}"}
    assert _post(secure_app, signer, "/cds-services/gmed-driver", call).status_code == 200
    outcome = _post(secure_app, signer, "/v1/outcomes", {
        "assessment_id": created.get_json()["id"], "complaint": "pfp", "hip_driver": True})
    assert outcome.status_code == 201
    with secure_app.app_context():
        rows = get_store().rows(audit)
        version = get_model().version
        reference = get_store().pseudonym(PATIENT, ISSUER)
    api, hook, confirmed = rows[-3:]
    assert [r["action"] for r in (api, hook, confirmed)] == ["api", "cds-hooks", "outcome"]
    for row in (api, hook, confirmed):
        assert row["caller"] == f"{ISSUER} ehr-client"  # the token's issuer and subject
        assert row["patient_ref"] == reference
    assert api["model_version"] == hook["model_version"] == version
    assert api["assessment_id"] == created.get_json()["id"]
    bands = {r["complaint"]: r["band"] for r in created.get_json()["results"]}
    assert api["returned"] == {"action": "assess", "red_flags": [], "results": bands}
    assert confirmed["returned"] == {"outcome": outcome.get_json()["id"]}


def test_patient_references_are_keyed_pseudonyms_never_stored_raw(
        make_app: Any, tmp_path: Path, runner_pfp: dict[str, Any]) -> None:
    database = tmp_path / "private.sqlite3"
    secret = "a-configured-secret-of-at-least-32-bytes"
    app = make_app(DATABASE_URL=f"sqlite:///{database}", PSEUDONYM_SECRET=secret)
    assert app.test_client().post("/v1/assessments",
                                  json={**runner_pfp, "patient_id": PATIENT}).status_code == 201
    with app.app_context():
        stored = get_store().rows(audit)[-1]["patient_ref"]
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"gmed-cds v1 pseudonym").derive(secret.encode())
    message = json.dumps(["", PATIENT]).encode()  # no issuer: auth is off in this app
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    assert stored == expected
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("private.sqlite3*"))
    assert PATIENT.encode() not in raw and expected.encode() in raw
