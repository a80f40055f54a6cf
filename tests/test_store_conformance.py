"""One set of assertions run against every implementation of the store's interface: the SQL
store (SQLite, group commit) and the in-memory store. What the service relies on: ids are not
reused, a unit is written whole or not at all, newest first, replays refused, feedback and
outcomes only on what exists, an audit line per write, pseudonyms keyed by the store's secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.http.jsontext import encode_object
from service.store import (
    Insert,
    KeyConflict,
    MemoryStore,
    SQLStore,
    Store,
    StoreConfig,
    open_store,
)

SECRET = b"conformance-secret"
RESULT: dict[str, Any] = {"model": {"id": "gmed-driver", "version": "1"}, "action": "assess",
                          "red_flags": [{"feature": "night_pain"}],
                          "results": [{"complaint": "pfp", "band": "low"}]}


@pytest.fixture(params=["sql", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sql":
        yield SQLStore(f"sqlite:///{tmp_path / 'db.sqlite3'}", SECRET)
    else:
        yield MemoryStore(SECRET)


def _save(store: Store, **fields: Any) -> str:
    base: dict[str, Any] = {"source": "api", "inputs": {"age": 40}, "result": RESULT,
                            "patient_ref": None, "caller": "test"}
    return store.save_assessment(**{**base, **fields})


def test_both_implementations_are_stores() -> None:
    """Each class satisfies the protocol (mypy checks the assignment; this checks it runs)."""
    stores: list[Store] = [MemoryStore(), SQLStore("sqlite://", SECRET)]
    assert all(callable(s.write) for s in stores)


def test_open_store_picks_the_implementation_by_url(tmp_path: Path) -> None:
    assert isinstance(open_store(StoreConfig("memory://", SECRET)), MemoryStore)
    assert isinstance(open_store(StoreConfig(f"sqlite:///{tmp_path / 'x.sqlite3'}", SECRET)),
                      SQLStore)


def test_an_assessment_reads_back_as_written(store: Store) -> None:
    aid = _save(store, patient_ref="ref-1", issuer="iss", hook_instance="h-1",
                result_json=encode_object(RESULT))
    row = store.get_assessment(aid)
    assert row is not None
    assert (row["id"], row["patient_ref"], row["issuer"], row["hook_instance"]) == (
        aid, "ref-1", "iss", "h-1")
    assert row["result"] == RESULT and row["inputs"] == {"age": 40}
    assert (row["model_id"], row["model_version"], row["action"]) == ("gmed-driver", "1", "assess")
    assert store.get_assessment("no-such-id") is None


def test_an_id_is_stored_once_and_a_duplicate_writes_nothing(store: Store) -> None:
    _save(store, aid="a-1")
    audit_before = len(store.rows("audit"))
    with pytest.raises(KeyConflict):
        _save(store, aid="a-1", inputs={"age": 99})
    assert [r["id"] for r in store.rows("assessments")] == ["a-1"]
    assert store.get_assessment("a-1")["inputs"] == {"age": 40}  # type: ignore[index]
    assert len(store.rows("audit")) == audit_before  # the refused unit's audit line too


def test_a_unit_of_several_assessments_is_written_whole_or_not_at_all(store: Store) -> None:
    _save(store, aid="taken")
    first, work_1 = store.assessment_work(source="api-batch", inputs={}, result=RESULT,
                                          patient_ref=None, caller="t")
    _, work_2 = store.assessment_work(source="api-batch", inputs={}, result=RESULT,
                                      patient_ref=None, caller="t", aid="taken")
    with pytest.raises(KeyConflict):
        store.write(work_1 + work_2)
    assert store.get_assessment(first) is None
    second, work_3 = store.assessment_work(source="api-batch", inputs={}, result=RESULT,
                                           patient_ref=None, caller="t")
    store.write(work_1 + work_3)
    assert store.get_assessment(first) and store.get_assessment(second)


def test_a_patients_assessments_come_newest_first_with_their_links(store: Store) -> None:
    first = _save(store, patient_ref="p")
    second = store.save_assessment_from(first, source="ui", inputs={}, result=RESULT,
                                        patient_ref="p", caller="t")
    third = _save(store, patient_ref="p")
    _save(store, patient_ref="someone else")
    rows = store.patient_assessments("p")
    assert [r["id"] for r in rows] == [third, second, first]
    assert [r["previous_id"] for r in rows] == [None, first, None]
    assert [r["id"] for r in store.patient_assessments("p", limit=2)] == [third, second]
    assert store.previous_of(second) == first and store.previous_of(first) is None


def test_a_link_to_an_absent_assessment_is_refused(store: Store) -> None:
    with pytest.raises(KeyConflict):
        store.save_assessment_from("absent", source="ui", inputs={}, result=RESULT,
                                   patient_ref="p", caller="t")
    assert store.rows("assessments") == []


def test_a_hook_instance_finds_its_newest_assessment_within_a_patient(store: Store) -> None:
    old = _save(store, hook_instance="h", patient_ref="p")
    new = _save(store, hook_instance="h", patient_ref="q")
    assert store.assessment_of_hook("h") == new
    assert store.assessment_of_hook("h", of_patient=True, patient_ref="p") == old
    assert store.assessment_of_hook("h", of_patient=True, patient_ref=None) is None
    assert store.assessment_of_hook("other") is None


def test_a_token_id_is_accepted_once_until_it_expires(store: Store) -> None:
    assert store.remember_token("jti-1", "iss", expires_at=2_000, now_s=1_000)
    assert not store.remember_token("jti-1", "iss", expires_at=2_000, now_s=1_500)
    assert store.remember_token("jti-1", "other-iss", expires_at=2_000, now_s=1_500)
    assert store.remember_token("jti-2", "iss", expires_at=5_000, now_s=2_001)  # jti-1 forgotten
    assert store.remember_token("jti-1", "iss", expires_at=6_000, now_s=2_001)
    assert all(len(r["jti_hash"]) == 64 for r in store.rows("seen_tokens"))  # hashed, not kept


def test_feedback_on_known_cards_is_stored_and_audited(store: Store) -> None:
    _save(store, aid="a", issuer="iss", card_rows=[
        {"uuid": "c1", "complaint": "pfp", "suggestion_uuid": None}])
    assert store.known_cards(["c1", "c2"], "iss") == {"c1"}
    assert store.known_cards(["c1"], "another issuer") == set()
    assert store.known_cards(["c1"], None) == set()
    store.save_feedback([{"card_uuid": "c1", "outcome": "accepted",
                          "outcome_timestamp": "2026-01-01T00:00:00Z"}], "caller-1")
    [row] = store.rows("feedback")
    assert (row["card_uuid"], row["outcome"], row["caller"]) == ("c1", "accepted", "caller-1")
    assert store.rows("audit")[-1]["returned"] == {"feedback": 1}
    with pytest.raises(KeyConflict):
        store.save_feedback([{"card_uuid": "unknown", "outcome": "accepted",
                              "outcome_timestamp": "2026-01-01T00:00:00Z"}], "caller-1")
    assert len(store.rows("feedback")) == 1


def test_an_outcome_is_kept_for_an_existing_assessment_only(store: Store) -> None:
    aid = _save(store)
    oid = store.save_outcome(assessment_id=aid, complaint="pfp", hip_driver=True,
                             confirmed_on="2026-01-02", caller="c", patient_ref="p")
    [row] = store.rows("outcomes")
    assert (row["id"], row["assessment_id"], row["hip_driver"]) == (oid, aid, True)
    assert store.rows("audit")[-1]["returned"] == {"outcome": oid}
    with pytest.raises(KeyConflict):
        store.save_outcome(assessment_id="absent", complaint="pfp", hip_driver=False,
                           confirmed_on=None, caller="c", patient_ref=None)
    assert len(store.rows("outcomes")) == 1


def test_every_write_leaves_an_audit_line_in_order(store: Store) -> None:
    aid = _save(store, patient_ref="p")
    store.audit_event("caller-2", "cds-hooks", "p", {"cards": 0}, model_version="1")
    rows = store.rows("audit")
    assert [(r["action"], r["caller"], r["assessment_id"]) for r in rows] == [
        ("api", "test", aid), ("cds-hooks", "caller-2", None)]
    assert rows[0]["returned"] == {"action": "assess", "red_flags": ["night_pain"],
                                   "results": {"pfp": "low"}}
    assert rows[0]["id"] < rows[1]["id"]


def test_a_required_value_missing_is_refused(store: Store) -> None:
    with pytest.raises(KeyConflict):
        store.write([Insert("audit", ({"at": None, "action": "x"},))])
    assert store.rows("audit") == []


def test_the_secret_and_pseudonyms_are_the_stores_and_agree_across_stores(store: Store) -> None:
    assert store.secret() == SECRET
    other = MemoryStore(SECRET)
    assert store.pseudonym("p1", "iss") == other.pseudonym("p1", "iss")
    assert store.pseudonym("p1", "iss") != store.pseudonym("p1", "another iss")
    assert store.pseudonym("p1") != MemoryStore(b"another secret").pseudonym("p1")
    assert store.pseudonym("Jose\u0301") == store.pseudonym("Jos\u00e9")  # NFC
    assert store.pseudonym(None) is None and store.pseudonym("") is None
    assert "p1" not in (store.pseudonym("p1") or "p1")


def test_an_unknown_table_is_named_in_the_error(store: Store) -> None:
    with pytest.raises(ValueError, match="no table 'nope'"):
        store.rows("nope")
