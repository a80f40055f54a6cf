"""The patient reference a person entered or the EHR launched, shown back on this browser's pages.

The store keeps only a keyed pseudonym of a patient reference, so the page cannot show the
reference from the store. This browser's session (Flask's signed cookie, see :mod:`service.smart`)
remembers, for the pseudonyms it made, the reference as it was entered on the form or named by
the SMART launch, so that results, history and printouts say "Patient 4711-A" where they used
to say an id's first characters. It is never logged, never in a URL, and never leaves the
browser that typed or launched it; another browser sees "reference not shown on this device".
"""

from __future__ import annotations

from flask import session

SESSION_KEY = "gmed_patient_shown"
KEEP = 20  # the last references this browser used: a session cookie stays small (< 4 kB)


def remember(patient_ref: str | None, shown: str | None) -> None:
    """Remember that ``patient_ref`` (a pseudonym) is shown as ``shown`` on this browser."""
    if not patient_ref or not shown:
        return
    known = {k: v for k, v in dict(session.get(SESSION_KEY) or {}).items() if k != patient_ref}
    known[patient_ref] = shown[:128]
    session[SESSION_KEY] = dict(list(known.items())[-KEEP:])


def shown(patient_ref: str | None) -> str | None:
    """The reference this browser entered or launched for ``patient_ref``, if it did."""
    if not patient_ref:
        return None
    value = (session.get(SESSION_KEY) or {}).get(patient_ref)
    return value if isinstance(value, str) else None
