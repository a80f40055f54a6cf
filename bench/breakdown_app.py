"""The service app with its store write replaced, for ``bench/service_breakdown.py`` only."""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import Flask

from service import create_app
from service.store import get_store


def create(variant: str, wait_s: float = 0.0003) -> Flask:
    """``shipped``, ``no-flush`` (written, never flushed: SQLite ``synchronous=OFF``),
    ``wait-not-write`` (each write is a sleep of ``wait_s``) or ``no-store``."""
    app = create_app()
    with app.app_context():
        store = get_store()
    if variant == "wait-not-write":
        def wait(work: Any) -> None:
            time.sleep(wait_s)

        store.write = wait  # type: ignore[method-assign]
    elif variant == "no-store":
        def no_store(**kwargs: Any) -> str:
            return str(uuid.uuid4())

        store.save_assessment = no_store  # type: ignore[method-assign]
    elif variant == "no-flush":
        store._synchronous = "OFF"  # written to SQLite, never flushed to disk (bench only)
    elif variant != "shipped":
        raise ValueError(f"unknown variant {variant!r}")
    return app
