"""The record fields the simulator generates, read from the contract, and their limits."""

from __future__ import annotations

from cds.features import BY_NAME, Feature, record_fields


def generated_fields() -> tuple[Feature, ...]:
    """Every record field of the contract (one the simulator does not model stays unrecorded)."""
    return record_fields()


def bounds(name: str) -> tuple[float, float]:
    """The contract's limits of a field (infinite where it has none)."""
    f = BY_NAME[name]
    return (float("-inf") if f.minimum is None else float(f.minimum),
            float("inf") if f.maximum is None else float(f.maximum))
