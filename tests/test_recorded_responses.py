"""The service's and the CLI's answers on a recorded set of requests are byte-identical to the
recordings in ``tests/recorded/`` apart from ids and times (the rule is
:func:`tests.recorded.record.normalise`, applied to both sides).

A deliberate change of an answer: ``PYTHONPATH=$PWD python -m tests.recorded.record``, then
review the diff of ``tests/recorded/*.json`` and commit it with the change.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.recorded import record

REGENERATE = "PYTHONPATH=$PWD python -m tests.recorded.record"


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return record.answers(tmp_path_factory.mktemp("recorded-store"))


def _recorded() -> list[str]:
    return sorted(p.stem for p in record.HERE.glob("*.json"))


def test_every_recording_is_replayed_and_every_answer_is_recorded(
        answers: dict[str, dict[str, Any]]) -> None:
    assert sorted(answers) == _recorded(), f"recordings out of date: {REGENERATE}"


def test_the_recordings_cover_every_representation() -> None:
    kinds = {json.loads(record.path_of(n).read_text()).get("content_type") for n in _recorded()}
    assert {"application/json", "application/fhir+json", "text/html; charset=utf-8",
            "application/pdf", None} <= kinds  # None: the CLI's text


@pytest.mark.parametrize("name", _recorded())
def test_answer_is_byte_identical_to_the_recording(answers: dict[str, dict[str, Any]],
                                                   name: str) -> None:
    recorded = json.loads(record.path_of(name).read_text())
    now = answers.get(name)
    assert now is not None, f"{name} is no longer replayed: {REGENERATE}"
    for key in ("request", "status", "content_type", "location"):
        assert now.get(key) == recorded.get(key), f"{name}: {key} changed ({REGENERATE} if meant)"
    assert now["body"] == recorded["body"], f"{name}: body changed ({REGENERATE} if meant)"


def test_normalisation_replaces_ids_and_times_only() -> None:
    text = ('{"id": "0F1C29A8-409d-44c0-a70b-ea79f9e22d21", "at": "2026-01-02T03:04:05.6+00:00",'
            ' "on": "1999-02-01", "p": 0.68, "n": "12345678"}')
    assert record.normalise(text) == ('{"id": "<id>", "at": "<time>", "on": "1999-02-01", '
                                      '"p": 0.68, "n": "12345678"}')

