"""Every key the service uses, each derived from the one secret with its own label.

The secret is the store's (:meth:`service.store.Store.secret`: ``PSEUDONYM_SECRET``, or, in
development, a random key the store keeps in ``<instance>/pseudonym.key``); it is never used as
a key itself. HKDF-SHA256 (RFC 5869, :mod:`cryptography`) expands it into one
32-byte key per purpose, each under its own ``info`` label:

* ``pseudonym``: HMAC-SHA256 of a patient reference (:func:`pseudonym`);
* ``session``: the clinician page's signed session cookie (:mod:`service.security.smart`);
* ``csrf``: the clinician form's CSRF token (:mod:`service.ui.pages`);
* ``patient-label``: the AES-GCM key of the patient reference this browser shows
  (:mod:`service.security.patient_label`; before, the pseudonym of a fixed string).

No key is the output of another purpose's function (before, the session key was the pseudonym
of a fixed string, so a caller who sent that string as a ``patient_id`` made the store hold the
session key in clear). A pseudonym is namespaced by the calling issuer and taken of the NFC form
of the reference, so one patient id from two EHRs gives two pseudonyms and one id typed in NFC
or NFD gives one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from dataclasses import dataclass
from json.encoder import encode_basestring

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app

_EXT = "gmed.keys"
_LABEL = b"gmed-cds v1 "


@dataclass(frozen=True, repr=False)
class Keys:
    """The derived keys (``repr`` shows none of them)."""

    pseudonym: bytes
    session: bytes
    csrf: bytes
    patient_label: bytes


def _hkdf(secret: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_LABEL + label.encode()).derive(secret)


def derive(secret: bytes) -> Keys:
    """One key per purpose from ``secret`` (see the module docstring)."""
    return Keys(pseudonym=_hkdf(secret, "pseudonym"), session=_hkdf(secret, "session"),
                csrf=_hkdf(secret, "csrf"), patient_label=_hkdf(secret, "patient-label"))


_KEYED: dict[bytes, hmac.HMAC] = {}  # the HMAC state after each key, copied per message


def _keyed(key: bytes) -> hmac.HMAC:
    base = _KEYED.get(key)
    if base is None:
        if len(_KEYED) >= 16:  # one key per store in a process; many only in tests
            _KEYED.clear()
        base = _KEYED[key] = hmac.new(key, digestmod=hashlib.sha256)
    return base


def pseudonym(key: bytes, patient_id: str, namespace: str = "") -> str:
    """HMAC-SHA256 (hex) of ``[namespace, NFC(patient_id)]``: stable per key and issuer, not
    reversible without the key, and unambiguous (a JSON array, not a concatenation).

    The message is the text ``json.dumps([namespace, nfc], ensure_ascii=False)`` gives, spelt
    out (its two strings encoded as that call encodes them), and the HMAC starts from a copy
    of the keyed state: the same digest at a third of the cost, for every assessment."""
    message = (f"[{encode_basestring(namespace)}, "
               f"{encode_basestring(unicodedata.normalize('NFC', patient_id))}]")
    digest = _keyed(key).copy()
    digest.update(message.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def mac(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 (hex) of ``parts`` as a JSON array (the CSRF token's binding)."""
    message = json.dumps(list(parts), ensure_ascii=False)
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def init_app(app: Flask) -> None:
    """Derive this app's keys from its store's secret (after :func:`service.store.init_app`,
    before the session needs them)."""
    from ..store import get_store  # the store derives its pseudonyms with this module

    app.extensions[_EXT] = derive(get_store(app).secret())


def get_keys(app: Flask | None = None) -> Keys:
    """This app's derived keys."""
    keys: Keys = (app or current_app).extensions[_EXT]
    return keys
