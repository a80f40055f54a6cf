"""The typed errors of the core. Each class owns its HTTP status; front ends map them once.

A request can break a rule once per array item or per unknown key: a 1.1 KB gzipped body once
got a 58.6 MB 422, one error per item. :class:`ErrorList` keeps what is reported small whatever
the input: at most :data:`MAX_ERRORS_PER_FIELD` errors of one field (``complaints[7]`` is field
``complaints``) and :data:`MAX_ERRORS` in all, each cut counted and said ("and N more").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_ERRORS = 20
MAX_ERRORS_PER_FIELD = 3


@dataclass(frozen=True)
class FieldError:
    """One broken rule: which field, which rule, and a sentence for a person."""

    field: str
    rule: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


def field_root(name: str) -> str:
    """The field an error belongs to: ``complaints[7]`` and ``feedback[2].card`` -> the array."""
    return name.split("[", 1)[0]


class ErrorList:
    """Broken rules, collected up to a bound: the first :data:`MAX_ERRORS_PER_FIELD` of each
    field and :data:`MAX_ERRORS` in all are kept; the others are only counted, so a body of a
    million bad items holds a few dozen errors in memory, not a million.

    :meth:`report` gives the kept errors followed by the counts of the cut ones: one
    ``maxErrors`` error per field that was cut ("and N more"), and one on ``$`` for the rest.
    ``len()`` and ``total`` count every error appended; iterating gives the kept ones.
    """

    __slots__ = ("_cut", "_kept", "_per_field", "total")

    def __init__(self, errors: Iterable[FieldError] = ()) -> None:
        self._kept: list[FieldError] = []
        self._per_field: Counter[str] = Counter()  # errors seen per kept field
        self._cut = 0  # errors of fields with none kept (the total was reached)
        self.total = 0
        self.extend(errors)

    def append(self, error: FieldError) -> None:
        self.total += 1
        root = field_root(error.field)
        seen = self._per_field.get(root)
        if seen is None and len(self._kept) >= MAX_ERRORS:
            self._cut += 1
            return
        self._per_field[root] = (seen or 0) + 1
        if (seen or 0) < MAX_ERRORS_PER_FIELD and len(self._kept) < MAX_ERRORS:
            self._kept.append(error)

    def extend(self, errors: Iterable[FieldError]) -> None:
        for error in errors:
            self.append(error)

    def __bool__(self) -> bool:
        return self.total > 0

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[FieldError]:
        return iter(self._kept)

    def mentions(self, field: str) -> bool:
        """Has any error of ``field`` (or of its items) been kept?"""
        return field in self._per_field

    def report(self) -> list[FieldError]:
        """The kept errors, then one ``maxErrors`` line per field that was cut and one on ``$``
        for the errors of fields not listed: at most ``2 * MAX_ERRORS + 1`` entries."""
        kept = Counter(field_root(e.field) for e in self._kept)
        out = list(self._kept)
        for root, seen in self._per_field.items():
            if seen > kept[root]:
                out.append(FieldError(root, "maxErrors",
                                      f"{root}: and {seen - kept[root]} more errors of this "
                                      f"field, not listed (at most {MAX_ERRORS_PER_FIELD} "
                                      "are)"))
        if self._cut:
            out.append(FieldError("$", "maxErrors",
                                  f"and {self._cut} more errors of other fields, not listed "
                                  f"({self.total} in all; at most {MAX_ERRORS} are)"))
        return out


class CdsError(Exception):
    """Base of every error the core raises on purpose.

    It crosses a process boundary (a Dask worker's task) intact: pickling keeps its message
    and attributes instead of calling a subclass's own ``__init__`` with the message (which,
    for :class:`InvalidRecord` or ``DataRejected``, rebuilt it from the message's characters).
    """

    status: int = 500
    code: str = "error"

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.args, dict(self.__dict__))


def _rebuild(cls: type[CdsError], args: tuple[Any, ...], state: dict[str, Any]) -> CdsError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidRecord(CdsError):
    """A patient record broke the contract; carries every broken rule at once (up to the
    bounds of :class:`ErrorList`, the rest counted in ``total``)."""

    status = 422
    code = "invalid-record"

    def __init__(self, errors: Iterable[FieldError]) -> None:
        collected = errors if isinstance(errors, ErrorList) else ErrorList(errors)
        self.errors = collected.report()  # bounded: see ErrorList
        self.total = collected.total
        fields = ", ".join(f"{e.field} ({e.rule})" for e in self.errors)
        super().__init__(f"{self.total} broken rule(s): {fields}")


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
