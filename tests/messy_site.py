"""A clinic's export as it really comes: the simulator's patients written the way a site's
spreadsheet writes them (used by the messy-data tests and the README's walk-through).

``python -m tests.messy_site OUT.csv [N] [SEED] [MONTHS]`` writes one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from training.simulate import simulate

# how the site names its columns (the contract's names on the right)
SITE_NAMES = {"patient_id": "Patient", "age_years": "Age", "sex": "Gender",
              "bmi_kg_m2": "BMI (kg/m2)", "complaint": "complaint", "hip_driver": "outcome",
              "pain_nrs": "Pain NRS", "hip_abduction_left_nm_per_kg": "hip_abd_L",
              "hip_abduction_right_nm_per_kg": "hip_abd_R"}
DROPPED = ("p_true", "weak", "alt_cause", "hip_driver_true", "is_control", "care_setting",
           "single_leg_squat_knee_fppa_deg", "single_leg_squat_pelvic_drop_deg",
           "single_leg_squat_trunk_lean_deg", "running_pelvic_drop_deg")


def messy_frame(n: int, seed: int) -> pd.DataFrame:
    """``n`` simulated patients as the site writes them, plus 3 exact duplicates and one
    patient recorded twice with different values."""
    frame = simulate(n, seed)
    frame = frame[frame["complaint"].notna()].drop(columns=list(DROPPED)).reset_index(drop=True)
    out = frame.copy()
    out["sex"] = frame["sex"].map({"female": "F", "male": "M"})
    for side in ("left", "right"):
        name = f"hip_abduction_{side}_nm_per_kg"
        out[name] = [f"{v:.2f} Nm/kg".replace(".", ",") if v == v else "" for v in frame[name]]
    for name in ("pain_worse_single_leg_loading", "lateral_hip_pain", "trendelenburg_sign"):
        out[name] = frame[name].map({1.0: "yes", 0.0: "no"})
    out["hip_driver"] = frame["hip_driver"].map({1.0: "Yes", 0.0: "No"})
    out = pd.concat([out, out.iloc[:3]], ignore_index=True)  # exact duplicates
    twice = out.iloc[[3]].copy()
    twice["pain_nrs"] = (twice["pain_nrs"] + 1) % 11
    out = pd.concat([out, twice], ignore_index=True)  # same patient and complaint, differs
    return out.rename(columns=SITE_NAMES)


def write_messy_csv(path: Path, n: int = 3000, seed: int = 7, months: int = 0) -> Path:
    """The site's export: semicolon-separated, decimal commas; with ``months``, a
    ``recorded_at`` date spreading the rows over that many months of 2026."""
    frame = messy_frame(n, seed)
    if months:
        frame["recorded_at"] = [f"2026-{1 + i % months:02d}-15" for i in range(len(frame))]
    frame.to_csv(path, sep=";", decimal=",", index=False)
    return path


if __name__ == "__main__":
    args = sys.argv[1:]
    write_messy_csv(Path(args[0]), *(int(a) for a in args[1:4]))
