"""What the service keeps, as one interface: :class:`Store`.

Every route reaches the store through this ``Protocol`` (:func:`service.store.get_store`), never
through a database statement: assessments (with their cards, audit line and the assessment they
were made from), feedback, outcomes, the audit trail, seen token ids (replay), shadow-model estimates
(:mod:`service.serving.shadow`) and the secret the
service's keys are derived from (:mod:`service.security.keys`). Writes are values (:class:`Insert`, a
table name and plain rows), so a unit of work can be built, combined with others (a batch) and
written in one transaction by any implementation: :class:`~service.store.sql.SQLStore` (SQLite
or any SQLAlchemy URL, group commit) or :class:`~service.store.memory.MemoryStore` (tests).
Rows come back as plain dicts keyed by the column names of :data:`cds.store_schema.TABLES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypedDict

from cds.store_schema import TABLES

TableName = Literal["assessments", "cards", "feedback", "outcomes", "audit", "seen_tokens",
                    "assessment_links", "shadow_assessments"]
Row = dict[str, Any]


class AssessmentRow(TypedDict):
    """A stored assessment, as :meth:`Store.get_assessment` reads it back."""

    id: str
    created_at: datetime
    patient_ref: str | None
    source: str
    hook_instance: str | None
    model_id: str
    model_version: str
    action: str
    inputs: dict[str, Any]
    result: dict[str, Any]
    issuer: str | None


class LinkedAssessment(AssessmentRow):
    """A stored assessment with the id of the one it was made from (``None``: none)."""

    previous_id: str | None


@dataclass(frozen=True)
class Insert:
    """Rows to add to one table (columns as in :data:`cds.store_schema.TABLES`)."""

    table: TableName
    rows: tuple[Row, ...]


Work = list[Insert]
"""A unit of work: inserts written together in one transaction, or not at all."""


class KeyConflict(Exception):
    """A write refused by the store's constraints (a duplicate key, a row whose parent is
    absent, a required value missing): nothing of its unit was written. The caller's mistake,
    never the store's failure."""


class Named(Protocol):
    """A table given by its definition (a SQLAlchemy ``Table``) rather than its name."""

    @property
    def name(self) -> str: ...


def table_name(table: str | Named) -> str:
    """The name of ``table`` (given as a name or a definition), checked against the schema."""
    name = table if isinstance(table, str) else table.name
    if name not in TABLES:
        raise ValueError(f"no table {name!r} in the store (known: {', '.join(TABLES)})")
    return name


def now() -> datetime:
    return datetime.now(UTC)


def summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """What was returned, for the audit trail: action, red flags and bands (no inputs)."""
    return {"action": result["action"],
            "red_flags": [f["feature"] for f in result.get("red_flags", [])],
            "results": {r["complaint"]: r["band"] for r in result.get("results", [])}}


def audit_row(*, caller: str, action: str, returned: Any, patient_ref: str | None = None,
              model_version: str | None = None, assessment_id: str | None = None) -> Row:
    """An audit row with every column (rows of one batch share a statement: same keys)."""
    return {"at": now(), "caller": caller, "action": action, "patient_ref": patient_ref,
            "model_version": model_version, "assessment_id": assessment_id,
            "returned": returned}


class Store(Protocol):
    """Everything the service keeps (see the module docstring)."""

    def secret(self) -> bytes:
        """The secret every key of the service is derived from (:mod:`service.security.keys`)."""

    def pseudonym(self, patient_id: str | None, issuer: str | None = None) -> str | None:
        """The keyed pseudonym of a patient reference in ``issuer``'s namespace."""

    def new_id(self) -> str:
        """A fresh assessment id."""

    def ping(self) -> bool:
        """Whether the store answers."""

    def write(self, work: Sequence[Insert]) -> None:
        """Write ``work`` in one committed transaction, or nothing of it (:class:`KeyConflict`,
        :class:`~service.http.errors.StoreUnavailable`, :class:`~service.http.errors.DeadlineExceeded`)."""

    def assessment_work(self, *, source: str, inputs: Mapping[str, Any],
                        result: Mapping[str, Any], patient_ref: str | None, caller: str,
                        hook_instance: str | None = None,
                        card_rows: list[dict[str, Any]] | None = None, returned: Any = None,
                        aid: str | None = None, result_json: Any = None,
                        issuer: str | None = None) -> tuple[str, Work]:
        """An assessment's rows, cards and audit line (not yet written) and its id."""

    def save_assessment(self, **fields: Any) -> str:
        """:meth:`assessment_work` written at once; the assessment's id."""

    def save_assessment_from(self, previous_id: str, **fields: Any) -> str:
        """:meth:`save_assessment` linked, in the same transaction, to ``previous_id``."""

    def get_assessment(self, aid: str) -> AssessmentRow | None:
        """The stored assessment ``aid``, or ``None``."""

    def previous_of(self, aid: str) -> str | None:
        """The id of the assessment ``aid`` was made from, if any."""

    def patient_assessments(self, patient_ref: str, limit: int = 100
                            ) -> list[LinkedAssessment]:
        """A patient's assessments, newest first, each with its ``previous_id``."""

    def assessment_of_hook(self, hook_instance: str, *, of_patient: bool = False,
                           patient_ref: str | None = None) -> str | None:
        """The newest assessment made by the CDS Hooks call ``hook_instance`` (with
        ``of_patient``: only one of ``patient_ref``), or ``None``."""

    def known_cards(self, uuids: list[str], issuer: str | None = None) -> set[str]:
        """The uuids among ``uuids`` of cards given to ``issuer``."""

    def save_feedback(self, items: list[dict[str, Any]], caller: str) -> None:
        """Feedback rows on cards, and their audit line."""

    def save_outcome(self, *, assessment_id: str, complaint: str, hip_driver: bool,
                     confirmed_on: str | None, caller: str, patient_ref: str | None) -> str:
        """A confirmed outcome of an assessment, and its audit line; the outcome's id."""

    def audit_event(self, caller: str, action: str, patient_ref: str | None,
                    returned: Any, model_version: str | None = None) -> None:
        """An audit line for an answer that stored no assessment."""

    def remember_token(self, jti: str, iss: str, expires_at: int, now_s: int) -> bool:
        """Record a token id until ``expires_at``; ``False`` if it was seen before (a replay).
        Ids expired at ``now_s`` are forgotten."""

    def shadow_work(self, assessment_id: str, model_id: str, model_version: str,
                    scores: list[dict[str, Any]]) -> Work:
        """The row of a shadow model's estimates of assessment ``assessment_id`` (not yet
        written: :meth:`write` it with the assessment's rows, or after them)."""

    def recent_assessments(self, since: datetime, limit: int) -> list[Row]:
        """Assessments made since ``since``, newest first, at most ``limit`` (monitoring): each
        with its ``id``, ``created_at``, ``action``, ``inputs`` and ``outcomes`` (complaint ->
        hip_driver, the latest recorded per complaint)."""

    def rows(self, table: str | Named) -> list[Row]:
        """Every row of a table (tests and exports)."""
