"""``POST /v1/assessments/batch`` is all-or-nothing in the store: a 503 means no record of the
batch was stored, a 201 means every valid one was (one transaction, one group-commit unit)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

import cds
from service.store import assessments, audit, get_store
from tests.conftest import load_example

BATCH = "/v1/assessments/batch"
N = 20


def _rows(app: Flask) -> tuple[int, int]:
    """Assessments and audit lines stored."""
    with app.app_context():
        store = get_store()
        return len(store.rows(assessments)), len(store.rows(audit))


@pytest.fixture
def slow_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each assessment takes 20 ms more: a batch of 20 needs 0.4 s."""
    real = cds.assess

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.02)
        return real(*args, **kwargs)

    monkeypatch.setattr(cds, "assess", slow)


def _post(app: Flask, n: int = N) -> Any:
    records = [load_example("runner_pfp_hip_driven") for _ in range(n)]
    return app.test_client().post(BATCH, json={"records": records})


def test_a_batch_cut_by_its_deadline_midway_stores_nothing(
        make_app: Callable[..., Flask], slow_model: None) -> None:
    """The deadline passes after about half the records were assessed (before, those were
    already committed: 78 of 100 stored, and the answer said nothing was)."""
    app = make_app(REQUEST_DEADLINE=0.2)
    response = _post(app)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "deadline-exceeded"
    assert _rows(app) == (0, 0)


def test_every_batch_answer_is_all_or_nothing(make_app: Callable[..., Flask],
                                              slow_model: None) -> None:
    """Deadlines from well short of the batch's 0.4 s to well past it: each answer is a 503
    with nothing stored or a 201 with all 20 stored, never a part; both answers occur."""
    seen = set()
    for limit in (0.05, 0.15, 0.25, 0.35, 0.45, 0.6, 30.0):
        app = make_app(REQUEST_DEADLINE=limit)
        before = _rows(app)
        response = _post(app)
        after = _rows(app)
        stored = after[0] - before[0]
        assert (response.status_code, stored) in ((503, 0), (201, N)), limit
        assert after[1] - before[1] == stored  # one audit line per stored assessment
        if response.status_code == 201:
            ids = [r["id"] for r in response.get_json()["results"]]
            with app.app_context():
                assert all(get_store().get_assessment(aid) for aid in ids)
        seen.add(response.status_code)
    assert seen == {201, 503}


def test_a_batch_the_writer_cannot_take_in_time_is_withdrawn_whole(
        make_app: Callable[..., Flask]) -> None:
    """Another commit holds the writer past the deadline: the batch's one unit is withdrawn
    before it is written, and the answer is 503 with nothing stored."""
    app = make_app(REQUEST_DEADLINE=0.3)
    with app.app_context():
        writer = get_store()._writer
    with writer._cond:
        writer._leading = True  # a commit under way, as far as the batch can tell
    try:
        response = _post(app)
    finally:
        with writer._cond:
            writer._leading = False
            writer._cond.notify_all()
    assert response.status_code == 503
    assert _rows(app) == (0, 0)
    assert _post(app).status_code == 201 and _rows(app) == (N, N)


def test_invalid_records_fail_alone_and_the_valid_are_stored_together(
        make_app: Callable[..., Flask]) -> None:
    app = make_app()
    good = load_example("runner_pfp_hip_driven")
    response = app.test_client().post(BATCH, json={"records": [good, {**good, "sex": "x"}, good]})
    assert response.status_code == 201
    assert [r["status"] for r in response.get_json()["results"]] == [201, 422, 201]
    assert _rows(app) == (2, 2)
    nothing = app.test_client().post(BATCH, json={"records": [{**good, "sex": "x"}]})
    assert nothing.status_code == 200 and _rows(app) == (2, 2)
