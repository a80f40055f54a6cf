"""The typed errors of the core. Each class owns its HTTP status; front ends map them once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One broken rule: which field, which rule, and a sentence for a person."""

    field: str
    rule: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class CdsError(Exception):
    """Base of every error the core raises on purpose."""

    status: int = 500
    code: str = "error"


class InvalidRecord(CdsError):
    """A patient record broke the contract; carries every broken rule at once."""

    status = 422
    code = "invalid-record"

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        fields = ", ".join(f"{e.field} ({e.rule})" for e in errors)
        super().__init__(f"{len(errors)} invalid field(s): {fields}")


class ModelUnavailable(CdsError):
    """No verified model could be loaded (missing, unknown alias, wrong contract)."""

    status = 503
    code = "model-unavailable"


class IntegrityError(ModelUnavailable):
    """A model artefact failed its SHA-256 manifest check; nothing of it was parsed."""

    code = "integrity"


class UserError(CdsError):
    """A user's mistake in what they gave a command: a file, a column, a row or a name that
    breaks a rule. The message names which and the rule; the command line exits with status 2
    and no traceback (a traceback means a bug)."""

    status = 422
    code = "user-error"
