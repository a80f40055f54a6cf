#!/usr/bin/env python3
"""Sign and send one example call, as an EHR does (CDS Hooks 2.0 client authentication).

DEVELOPMENT ONLY: the key pair in ``examples/dev-keys/`` is public (it is in the repository);
never configure its JWKS on a service that holds real data.

Start the service trusting the development issuer, then send an example::

    GMED_AUTH=jwt GMED_JWT_ISSUERS='{"https://ehr.example.org":
        {"jwks_file": "examples/dev-keys/DEVELOPMENT-ONLY-ehr-jwks.json"}}' make serve
    python examples/sign_request.py examples/cds-hooks/patient-view.json
    python examples/sign_request.py examples/fhir/transaction-bundle.json
    python examples/sign_request.py examples/fhir/questionnaire-response.json

A CDS Hooks request goes to ``/cds-services/gmed-driver``; FHIR goes to ``/v1/assessments``
(answered as a RiskAssessment). The token is ES384, ``aud`` = the URL called, single-use ``jti``,
five minutes of life. ``--dry-run`` prints the URL, headers and body without sending.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import jwt

HERE = Path(__file__).resolve().parent
DEV_KEY = HERE / "dev-keys" / "DEVELOPMENT-ONLY-ehr-private-key.pem"
DEV_KID = "dev-ehr-1"
DEV_ISSUER = "https://ehr.example.org"
FHIR = "application/fhir+json"


def target(body: Any, base: str) -> tuple[str, dict[str, str]]:
    """Where an example goes, and its content headers: a hook call or FHIR resources."""
    if isinstance(body, dict) and "hook" in body:
        service = "gmed-driver-encounter" if body["hook"] == "encounter-start" else "gmed-driver"
        return f"{base}/cds-services/{service}", {"Content-Type": "application/json"}
    return f"{base}/v1/assessments", {"Content-Type": FHIR, "Accept": FHIR}


def token(url: str, *, key_pem: bytes, issuer: str = DEV_ISSUER, kid: str = DEV_KID) -> str:
    """A CDS Hooks client JWT for a call to ``url``."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": "example-ehr", "aud": url, "iat": now, "exp": now + 300,
              "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key_pem, algorithm="ES384", headers={"kid": kid, "typ": "JWT"})


def signed_request(path: Path, base: str, key: Path = DEV_KEY) -> tuple[str, dict[str, str], bytes]:
    """The URL, headers and body of the signed call for the example at ``path``."""
    body = json.loads(path.read_text())
    url, headers = target(body, base.rstrip("/"))
    headers["Authorization"] = f"Bearer {token(url, key_pem=key.read_bytes())}"
    return url, headers, json.dumps(body).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("example", type=Path, help="an example JSON file")
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="the service's base URL")
    parser.add_argument("--key", type=Path, default=DEV_KEY, help="ES384 private key (PEM)")
    parser.add_argument("--dry-run", action="store_true", help="print, do not send")
    args = parser.parse_args(argv)
    if not args.example.is_file():
        print(f"sign_request: no such file: {args.example}", file=sys.stderr)
        return 2
    url, headers, body = signed_request(args.example, args.base, args.key)
    if args.dry_run:
        print(json.dumps({"url": url, "headers": headers, "bytes": len(body)}, indent=2))
        return 0
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, answer = e.code, e.read()
    except urllib.error.URLError as e:
        print(f"sign_request: cannot reach {url}: {e.reason}", file=sys.stderr)
        return 1
    print(status)
    print(answer.decode(errors="replace"))
    return 0 if status < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
