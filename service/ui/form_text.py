"""Form errors in plain words: the contract's broken rule, said as what to enter instead.

The JSON API keeps the validator's messages (field and rule, for a program); the clinician's form
shows these instead: no rule names, no ``/10 (maximum)``, and a reason when a value is refused
because the model was not built for it (an age outside the contract's range). One rule for what
may stay empty, read from the contract: a field marked ``required`` (the complaints, age and sex:
the model's starting point depends on them) must be given, and the form offers no "Not recorded"
for it; every other field may stay empty and the estimate treats it as not recorded.
"""

from __future__ import annotations

from cds.errors import FieldError
from cds.features import Feature

from ..serving.model_facts import short_unit


def _range(f: Feature) -> str:
    return short_unit(f"{f.minimum:g} to {f.maximum:g}", f.unit)


def why_required(f: Feature) -> str:
    """The hint beside a required field: it may not stay empty, and why."""
    return ("Needed for an estimate: the model starts from it, so it cannot be left "
            "not recorded")


def needed_sentence(fields: list[Feature]) -> str:
    """``Complaints, age and sex are needed for an estimate.`` from the contract's required."""
    labels = [f.label if i == 0 else f.label[0].lower() + f.label[1:]
              for i, f in enumerate(fields)]
    if not labels:
        return ""
    names = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    return f"{names} {'is' if len(labels) == 1 else 'are'} needed for an estimate."


def plain_message(f: Feature | None, e: FieldError) -> str:
    """What the person should enter, for the rule ``e`` broke on field ``f``."""
    if f is None:
        return "This entry is not part of the form"
    choice = f.kind in {"category", "boolean"} or f.role == "rows"
    if e.rule == "required" or e.rule == "minItems":
        what = ("Tick at least one" if f.role == "rows" else "Choose one" if choice
                else "Enter a value")
        return f"{what}: {why_required(f)[0].lower()}{why_required(f)[1:]}"
    if e.rule in {"minimum", "maximum"} and f.minimum is not None and f.maximum is not None:
        if f.required:  # a value the model was not built for, not a typing slip
            return (f"Enter a value from {_range(f)}: the model was built on patients in "
                    "this range only, so it gives no estimate outside it")
        return f"Enter a value from {_range(f)}"
    if e.rule in {"type", "integer"} and not choice:
        whole = f.kind == "integer" or e.rule == "integer"
        return "Enter a whole number, such as 41" if whole else "Enter a number, such as 1.25"
    if choice:
        return "Choose one of the options"
    return "Check this entry"
