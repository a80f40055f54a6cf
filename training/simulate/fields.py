"""The record fields the simulator generates: the contract's, plus agreed ones it lacks yet.

The lead fixed the names of the contract's new findings; until ``cds.features`` declares one,
the simulator generates it under that name from the stand-in declaration below (group, kind,
limits, procedure). A field the contract declares is always read from the contract.
"""

from __future__ import annotations

from cds.features import BY_NAME, Feature, record_fields

YES_NO = "yes/no"
_SQUAT = BY_NAME["single_leg_squat_knee_fppa_deg"].procedure
_DYNAMOMETRY = BY_NAME["hip_abduction_left_nm_per_kg"].procedure

_AGREED: tuple[Feature, ...] = (
    Feature("training_load_change_recent", "intake", "boolean",
            "Recent change in training load", unit=YES_NO),
    Feature("knee_extension_nm_per_kg", "exam", "number",
            "Isometric knee extension torque, painful side", unit="N·m/kg", minimum=0.2,
            maximum=6.0, procedure=_DYNAMOMETRY),
    Feature("hip_external_rotation_nm_per_kg", "exam", "number",
            "Isometric hip external rotation torque, painful side", unit="N·m/kg",
            minimum=0.05, maximum=2.0, procedure=_DYNAMOMETRY),
    Feature("hip_extension_nm_per_kg", "exam", "number",
            "Isometric hip extension torque, painful side", unit="N·m/kg", minimum=0.2,
            maximum=5.0, procedure=_DYNAMOMETRY),
    Feature("pain_resisted_hip_abduction", "exam", "boolean",
            "Lateral hip pain on resisted hip abduction", unit=YES_NO),
    Feature("fadir_positive", "exam", "boolean", "FADIR test positive", unit=YES_NO),
    Feature("ober_test_positive", "exam", "boolean", "Ober test positive", unit=YES_NO),
    Feature("noble_compression_positive", "exam", "boolean", "Noble compression test positive",
            unit=YES_NO),
    Feature("step_down_quality", "movement", "category", "Lateral step-down quality",
            allowed=("good", "moderate", "poor")),
    Feature("single_leg_squat_hip_adduction_deg", "movement", "number",
            "Single-leg squat: hip adduction", unit="°", minimum=-20, maximum=45,
            procedure=_SQUAT),
)


def generated_fields() -> tuple[Feature, ...]:
    """The contract's record fields, then the agreed fields it does not declare yet."""
    declared = record_fields()
    names = {f.name for f in declared}
    return (*declared, *(f for f in _AGREED if f.name not in names))


def field(name: str) -> Feature:
    """A generated field by name (the contract's declaration when it has one)."""
    return BY_NAME.get(name) or next(f for f in _AGREED if f.name == name)


# agreed limits the contract may not carry yet: ages 12-90 (adolescents accepted)
_AGREED_BOUNDS = {"age_years": (12.0, 90.0)}


def bounds(name: str) -> tuple[float, float]:
    if name in _AGREED_BOUNDS:
        return _AGREED_BOUNDS[name]
    f = field(name)
    return (float("-inf") if f.minimum is None else float(f.minimum),
            float("inf") if f.maximum is None else float(f.maximum))
