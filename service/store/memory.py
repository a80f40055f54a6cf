"""An in-memory :class:`~service.store.interface.Store`: the same behaviour, no database.

For tests (and a throwaway development run: ``DATABASE_URL="memory://"``). Each unit of work
is checked whole before any of it is applied, under one lock, so it is written entirely or not
at all, as a SQL transaction would be: a duplicate primary key, or a row whose parent
(``references`` in :data:`cds.store_schema.TABLES`) is absent, or a required value is
missing, raises
:class:`~service.store.interface.KeyConflict` and writes nothing. Autoincrement keys are
numbered from 1 per table; JSON columns go through the SQL store's serialiser, so a row reads
back as it would from the database. Nothing outlives the process.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from cds.store_schema import TABLES, Column

from ..http.jsontext import encode
from .interface import (
    AssessmentRow,
    Insert,
    KeyConflict,
    LinkedAssessment,
    Named,
    Row,
    table_name,
)
from .records import Records


def _value(column: Column, value: Any) -> Any:
    """A value as the SQL store gives it back: JSON columns through its serialiser."""
    if column.type == "json" and value is not None:
        return json.loads(encode(value))
    return copy.deepcopy(value)


def _key(columns: tuple[Column, ...]) -> str:
    return next(c.name for c in columns if c.primary_key)


class MemoryStore(Records):
    """Tables as lists of rows in this process (see the module docstring)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else os.urandom(32).hex().encode()
        self._lock = threading.Lock()
        self._tables: dict[str, list[Row]] = {name: [] for name in TABLES}
        self._keys: dict[str, set[Any]] = {name: set() for name in TABLES}
        self._next_id: dict[str, int] = {name: 1 for name in TABLES}

    def secret(self) -> bytes:
        return self._secret

    def ping(self) -> bool:
        return True

    def write(self, work: Sequence[Insert]) -> None:
        """Apply ``work`` whole, or raise :class:`KeyConflict` and apply none of it."""
        with self._lock:
            self._apply(work)

    def _apply(self, work: Sequence[Insert]) -> None:
        added: dict[str, set[Any]] = {name: set() for name in TABLES}
        staged: list[tuple[str, Row]] = []
        next_id = dict(self._next_id)
        for name in TABLES:  # parents before children, as the SQL store orders a batch
            for insert in (i for i in work if i.table == name):
                columns = TABLES[name]
                key = _key(columns)
                for given in insert.rows:
                    row = {c.name: _value(c, given.get(c.name)) for c in columns}
                    if next(c for c in columns if c.name == key).autoincrement:
                        row[key], next_id[name] = next_id[name], next_id[name] + 1
                    elif row[key] in self._keys[name] or row[key] in added[name]:
                        raise KeyConflict(f"{name}.{key}: duplicate key")
                    for c in columns:
                        if not c.nullable and not c.autoincrement and row[c.name] is None:
                            raise KeyConflict(f"{name}.{c.name}: a value is required")
                        if c.references and row[c.name] is not None:
                            parent, _, parent_key = c.references.partition(".")
                            if (row[c.name] not in self._keys[parent]
                                    and row[c.name] not in added[parent]):
                                raise KeyConflict(f"{name}.{c.name}: no such {parent}.{parent_key}")
                    added[name].add(row[key])
                    staged.append((name, row))
        for name, row in staged:
            self._tables[name].append(row)
            self._keys[name].add(row[_key(TABLES[name])])
        self._next_id = next_id

    def _select(self, name: str) -> list[Row]:
        with self._lock:
            return [copy.deepcopy(row) for row in self._tables[name]]

    def rows(self, table: str | Named) -> list[Row]:
        return self._select(table_name(table))

    def get_assessment(self, aid: str) -> AssessmentRow | None:
        found = next((r for r in self._select("assessments") if r["id"] == aid), None)
        return cast(AssessmentRow | None, found)

    def previous_of(self, aid: str) -> str | None:
        return next((r["previous_id"] for r in self._select("assessment_links")
                     if r["assessment_id"] == aid), None)

    def _newest_first(self, rows: list[Row]) -> list[Row]:
        return sorted(rows, key=lambda r: r["created_at"], reverse=True)

    def patient_assessments(self, patient_ref: str, limit: int = 100
                            ) -> list[LinkedAssessment]:
        links = {r["assessment_id"]: r["previous_id"] for r in self._select("assessment_links")}
        mine = [{**r, "previous_id": links.get(r["id"])} for r in self._select("assessments")
                if r["patient_ref"] == patient_ref]
        return cast(list[LinkedAssessment], self._newest_first(mine)[:limit])

    def assessment_of_hook(self, hook_instance: str, *, of_patient: bool = False,
                           patient_ref: str | None = None) -> str | None:
        found = [r for r in self._select("assessments") if r["hook_instance"] == hook_instance
                 and (not of_patient or r["patient_ref"] == patient_ref)]
        return self._newest_first(found)[0]["id"] if found else None

    def recent_assessments(self, since: datetime, limit: int) -> list[Row]:
        labels: dict[str, dict[str, bool]] = {}
        for o in sorted(self._select("outcomes"), key=lambda r: (r["recorded_at"], r["id"])):
            labels.setdefault(o["assessment_id"], {})[o["complaint"]] = bool(o["hip_driver"])
        found = [r for r in self._newest_first(self._select("assessments"))
                 if r["created_at"] >= since][:limit]
        return [{"id": r["id"], "created_at": r["created_at"], "action": r["action"],
                 "inputs": r["inputs"], "outcomes": labels.get(r["id"], {})} for r in found]

    def known_cards(self, uuids: list[str], issuer: str | None = None) -> set[str]:
        of_issuer = {r["id"] for r in self._select("assessments") if r["issuer"] == issuer}
        return {c["uuid"] for c in self._select("cards")
                if c["uuid"] in uuids and c["assessment_id"] in of_issuer}

    def remember_token(self, jti: str, iss: str, expires_at: int, now_s: int) -> bool:
        key = hashlib.sha256(f"{iss}\x00{jti}".encode()).hexdigest()
        with self._lock:
            live = [r for r in self._tables["seen_tokens"] if r["expires_at"] >= now_s]
            if any(r["jti_hash"] == key for r in live):
                return False
            live.append({"jti_hash": key, "expires_at": expires_at})
            self._tables["seen_tokens"] = live
            self._keys["seen_tokens"] = {r["jti_hash"] for r in live}
        return True
