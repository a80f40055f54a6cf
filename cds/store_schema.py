"""The tables of the service's store, declared once as plain data.

Two layers read them and may not import each other: the service writes them
(:mod:`service.store.sql`) and training reads them back as learning data
(:func:`training.sources.read_store`). Both build their SQLAlchemy tables from this declaration
with :func:`build`, so a column renamed here is renamed for both. Nothing here imports
SQLAlchemy at ``import cds`` time (:func:`build` imports it when called).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table

ColumnType = Literal["string", "integer", "boolean", "datetime", "json"]


@dataclass(frozen=True)
class Column:
    """One column: its name, type (``length`` for strings) and constraints."""

    name: str
    type: ColumnType
    length: int | None = None
    nullable: bool = True
    primary_key: bool = False
    index: bool = False
    references: str | None = None  # "table.column"
    autoincrement: bool = False


def _s(name: str, length: int, **kw: bool | str) -> Column:
    return Column(name, "string", length, **kw)  # type: ignore[arg-type]


# tables in dependency order (a parent before its children)
TABLES: dict[str, tuple[Column, ...]] = {
    "assessments": (
        _s("id", 36, primary_key=True, nullable=False),
        Column("created_at", "datetime", nullable=False),
        _s("patient_ref", 64, index=True),
        _s("source", 32, nullable=False),
        _s("hook_instance", 128),
        _s("model_id", 64, nullable=False),
        _s("model_version", 64, nullable=False),
        _s("action", 16, nullable=False),
        Column("inputs", "json", nullable=False),
        Column("result", "json", nullable=False),
        _s("issuer", 256),  # the caller's token issuer (None: auth off); added later
    ),
    "cards": (
        _s("uuid", 36, primary_key=True, nullable=False),
        _s("assessment_id", 36, references="assessments.id", nullable=False, index=True),
        _s("complaint", 16),
        _s("suggestion_uuid", 36),
    ),
    "feedback": (
        Column("id", "integer", primary_key=True, nullable=False, autoincrement=True),
        _s("card_uuid", 36, references="cards.uuid", nullable=False, index=True),
        _s("outcome", 16, nullable=False),
        Column("accepted_suggestions", "json"),
        Column("override_reason", "json"),
        _s("outcome_timestamp", 40, nullable=False),
        Column("received_at", "datetime", nullable=False),
        _s("caller", 256),
    ),
    "outcomes": (
        _s("id", 36, primary_key=True, nullable=False),
        _s("assessment_id", 36, references="assessments.id", nullable=False, index=True),
        _s("complaint", 16, nullable=False),
        Column("hip_driver", "boolean", nullable=False),
        _s("confirmed_on", 10),
        Column("recorded_at", "datetime", nullable=False),
        _s("caller", 256),
    ),
    "audit": (
        Column("id", "integer", primary_key=True, nullable=False, autoincrement=True),
        Column("at", "datetime", nullable=False),
        _s("caller", 256),
        _s("action", 64, nullable=False),
        _s("patient_ref", 64),
        _s("model_version", 64),
        _s("assessment_id", 36),
        Column("returned", "json"),
    ),
    "seen_tokens": (
        _s("jti_hash", 64, primary_key=True, nullable=False),
        Column("expires_at", "integer", nullable=False, index=True),
    ),
    # "add or change findings": the assessment an assessment was made from (its earlier visit)
    "assessment_links": (
        _s("assessment_id", 36, references="assessments.id", primary_key=True, nullable=False),
        _s("previous_id", 36, references="assessments.id", nullable=False, index=True),
    ),
    # shadow mode (issue #13, service.serving.shadow): the shadow model's estimates of an assessment,
    # stored beside it and never shown
    "shadow_assessments": (
        _s("id", 36, primary_key=True, nullable=False),
        _s("assessment_id", 36, references="assessments.id", nullable=False, index=True),
        Column("created_at", "datetime", nullable=False),
        _s("model_id", 64, nullable=False),
        _s("model_version", 64, nullable=False),
        Column("scores", "json", nullable=False),  # [{"complaint": ..., "probability": ...}]
    ),
}


def build(metadata: MetaData) -> dict[str, Table]:
    """The SQLAlchemy tables of :data:`TABLES` on ``metadata``, by name."""
    from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String
    from sqlalchemy import Column as SAColumn
    from sqlalchemy import Table as SATable
    from sqlalchemy.types import TypeEngine

    def sa_type(column: Column) -> TypeEngine[Any]:
        kinds: dict[str, TypeEngine[Any]] = {
            "string": String(column.length), "integer": Integer(), "boolean": Boolean(),
            "datetime": DateTime(timezone=True), "json": JSON()}
        return kinds[column.type]

    def sa_column(column: Column) -> SAColumn[Any]:
        extra: dict[str, object] = {"primary_key": True} if column.primary_key else {
            "nullable": column.nullable}
        if column.index:
            extra["index"] = True
        if column.autoincrement:
            extra["autoincrement"] = True
        fk = [ForeignKey(column.references)] if column.references else []
        return SAColumn(column.name, sa_type(column), *fk, **extra)  # type: ignore[arg-type]

    return {name: SATable(name, metadata, *(sa_column(c) for c in columns))
            for name, columns in TABLES.items()}
