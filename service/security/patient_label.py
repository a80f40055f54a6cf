"""The patient reference a person entered or the EHR launched, shown back on this browser's pages.

The store keeps only a keyed pseudonym of a patient reference, so the page cannot show the
reference from the store. This browser's session (Flask's signed cookie, see :mod:`service.security.smart`)
remembers, for the pseudonyms it made, the reference as it was entered on the form or named by
the SMART launch, encrypted (AES-256-GCM under its own key derived from the store's secret by
:mod:`service.security.keys`, so every worker reads it and the cookie never holds the reference in
clear), so that results, history, comparisons and handouts say "Patient 4711-A" where they
used to say an id's first characters. It is never logged and never in a URL; another browser
sees no reference.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import session

from .keys import get_keys

SESSION_KEY = "gmed_patient_shown"
KEEP = 20  # the last references this browser used: a session cookie stays small (< 4 kB)


def _aead() -> AESGCM:
    return AESGCM(get_keys().patient_label)


def remember(patient_ref: str | None, shown: str | None) -> None:
    """Remember that ``patient_ref`` (a pseudonym) is shown as ``shown`` on this browser."""
    if not patient_ref or not shown:
        return
    nonce = os.urandom(12)
    sealed = nonce + _aead().encrypt(nonce, shown[:128].encode(), patient_ref.encode())
    known = {k: v for k, v in dict(session.get(SESSION_KEY) or {}).items() if k != patient_ref}
    known[patient_ref] = base64.urlsafe_b64encode(sealed).decode()
    session[SESSION_KEY] = dict(list(known.items())[-KEEP:])


def shown(patient_ref: str | None) -> str | None:
    """The reference this browser entered or launched for ``patient_ref``, if it did."""
    if not patient_ref:
        return None
    sealed = (session.get(SESSION_KEY) or {}).get(patient_ref)
    if not isinstance(sealed, str):
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return _aead().decrypt(raw[:12], raw[12:], patient_ref.encode()).decode()
    except (ValueError, InvalidTag):
        return None
