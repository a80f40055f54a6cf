"""Every key the service uses, each derived from the one configured secret with its own label.

``PSEUDONYM_SECRET`` (or, in development, a random key kept in ``<instance>/pseudonym.key``) is
never used as a key itself. HKDF-SHA256 (RFC 5869, :mod:`cryptography`) expands it into one
32-byte key per purpose, each under its own ``info`` label:

* ``pseudonym``: HMAC-SHA256 of a patient reference (:func:`pseudonym`);
* ``session``: the clinician page's signed session cookie (:mod:`service.smart`);
* ``csrf``: the clinician form's CSRF token (:mod:`service.ui`).

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
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

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


def _hkdf(secret: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_LABEL + label.encode()).derive(secret)


def derive(secret: bytes) -> Keys:
    """One key per purpose from ``secret`` (see the module docstring)."""
    return Keys(pseudonym=_hkdf(secret, "pseudonym"), session=_hkdf(secret, "session"),
                csrf=_hkdf(secret, "csrf"))


def pseudonym(key: bytes, patient_id: str, namespace: str = "") -> str:
    """HMAC-SHA256 (hex) of ``[namespace, NFC(patient_id)]``: stable per key and issuer, not
    reversible without the key, and unambiguous (a JSON array, not a concatenation)."""
    message = json.dumps([namespace, unicodedata.normalize("NFC", patient_id)],
                         ensure_ascii=False)
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def mac(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 (hex) of ``parts`` as a JSON array (the CSRF token's binding)."""
    message = json.dumps(list(parts), ensure_ascii=False)
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def secret(app: Flask) -> bytes:
    """The configured ``PSEUDONYM_SECRET``, else the instance's random key (created once, 0600;
    development only: production refuses to start without a configured secret)."""
    configured = app.config["PSEUDONYM_SECRET"]
    if configured:
        return str(configured).encode()
    path = Path(app.instance_path) / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".pseudonym.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32).hex().encode())
        try:
            os.link(tmp, path)  # atomic: the first worker's key wins, the others read it
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def init_app(app: Flask) -> None:
    """Derive this app's keys (before the store and the session need them)."""
    app.extensions[_EXT] = derive(secret(app))


def get_keys(app: Flask | None = None) -> Keys:
    """This app's derived keys."""
    keys: Keys = (app or current_app).extensions[_EXT]
    return keys
