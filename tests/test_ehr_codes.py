"""Issue 14: every ICD-10-CM code of the contract exists (FY2022+) and carries its own display.

Displays as in the ICD-10-CM tabular list (FY2022 onwards): M22.2X3 does not exist, M54.5 has not
been valid since October 2021, and M22.2- is "Patellofemoral disorders" (not chondromalacia)."""

from __future__ import annotations

from cds.features import ICD10CM, ROWS

ICD10CM_DISPLAYS = {
    "M22.2X1": "Patellofemoral disorders, right knee",
    "M22.2X2": "Patellofemoral disorders, left knee",
    "M22.2X9": "Patellofemoral disorders, unspecified knee",
    "M76.30": "Iliotibial band syndrome, unspecified leg",
    "M76.31": "Iliotibial band syndrome, right leg",
    "M76.32": "Iliotibial band syndrome, left leg",
    "M54.50": "Low back pain, unspecified",
    "M54.51": "Vertebrogenic low back pain",
    "M54.59": "Other low back pain",
}


def test_every_icd10cm_complaint_code_is_valid_with_its_own_display() -> None:
    used = {c.code: c.display for codes in ROWS.allowed_codes for c in codes
            if c.system == ICD10CM}
    assert set(used) <= set(ICD10CM_DISPLAYS), set(used) - set(ICD10CM_DISPLAYS)
    assert used == {code: ICD10CM_DISPLAYS[code] for code in used}
