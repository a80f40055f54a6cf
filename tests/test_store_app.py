"""The service on its store's interface: the store named by ``DATABASE_URL`` (``memory://``: the
in-memory one) serves every route, and every key is derived from the store's secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from service.security.keys import derive, get_keys
from service.store import MemoryStore, SQLStore, get_store
from service.store.config import instance_secret
from tests.conftest import load_example
from tests.service_fixtures import make_app  # noqa: F401  (fixture)


def test_the_service_runs_on_the_memory_store(make_app: Callable[..., Flask]) -> None:  # noqa: F811
    app = make_app(DATABASE_URL="memory://")
    record: dict[str, Any] = load_example("runner_pfp_hip_driven")
    client = app.test_client()
    created = client.post("/v1/assessments", json=record)
    assert created.status_code == 201
    assert client.get(created.headers["Location"]).get_json() == created.get_json()
    with app.app_context():
        store = get_store()
        assert isinstance(store, MemoryStore)
        [row] = store.rows("assessments")
        assert row["patient_ref"] == store.pseudonym(record["patient_id"])
        assert store.rows("audit")[-1]["assessment_id"] == row["id"]
    assert client.get("/readyz").get_json()["checks"]["store"] == "ok"


def test_every_key_is_derived_from_the_stores_secret(make_app: Callable[..., Flask]) -> None:  # noqa: F811
    app = make_app(PSEUDONYM_SECRET="a-configured-secret-of-enough-length")
    with app.app_context():
        store = get_store()
        assert isinstance(store, SQLStore)
        assert store.secret() == b"a-configured-secret-of-enough-length"
        assert get_keys() == derive(store.secret())
        assert app.secret_key == get_keys().session


def test_without_a_configured_secret_the_store_keeps_one_per_instance(tmp_path: Path) -> None:
    secret = instance_secret(tmp_path)
    assert instance_secret(tmp_path) == secret and len(secret) == 64  # created once, then read
    assert (tmp_path / "pseudonym.key").stat().st_mode & 0o777 == 0o600


def test_the_patient_label_key_is_its_own_not_a_pseudonym(make_app: Callable[..., Flask]) -> None:  # noqa: F811
    """Before, the label's AES key was the pseudonym of a fixed string: a caller who sent that
    string as a patient id made the store hold the key in clear."""
    app = make_app()
    with app.app_context():
        as_pseudonym = get_store().pseudonym("gmed-ui-patient-label\x00key") or ""
        assert get_keys().patient_label != bytes.fromhex(as_pseudonym)
        assert len({get_keys().patient_label, get_keys().session, get_keys().csrf,
                    get_keys().pseudonym}) == 4
