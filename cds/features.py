"""The input contract: one declarative table of every input the product knows.

Everything else derives from :data:`FEATURES`: record validation and the JSON Schema of a
patient record, the model's column order and monotone constraints, the training-data schema,
the FHIR mapping, the intake form and the words of an explanation. Code reads this table; it
never restates it.

Groups follow the care setting in which a finding becomes available:

* ``intake``   - patient-reported (questionnaire at the front desk);
* ``exam``     - in-clinic examination, including hand-held dynamometry;
* ``movement`` - movement analysis (video or sensors), running analysis for runners.

Roles:

* ``model``    - a column of the model as recorded;
* ``rows``     - a list in the record; the model gets one row per element, in column ``row_column``;
* ``derived``  - a model column computed in :mod:`cds.intake` from the ``derived_from`` inputs;
* ``input``    - recorded but feeds the model only through a derived column;
* ``red_flag`` - a safety question; a ``True`` routes the patient to referral, never to a score.

``procedure`` names the clinical test that records an exam or movement finding: the unit of a
"next best assessment". ``applies_when`` restricts a finding to patients with a given answer
(running analysis only for runners).

Reference ranges are the 10th-90th percentile of pain-free adults (the simulated controls; a
test checks the table against them) unless the text says otherwise.

Codes: LOINC or SNOMED CT where a real code exists; otherwise a code of the product's local
code system :data:`LOCAL_SYSTEM`, whose codes are the feature names (documented in the FHIR
CodeSystem the service publishes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

Group = Literal["intake", "exam", "movement"]
Kind = Literal["number", "integer", "boolean", "category"]
Role = Literal["model", "rows", "derived", "input", "red_flag"]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOCAL_SYSTEM = "https://gmed-cds.org/fhir/CodeSystem/findings"
COMPLAINT_SYSTEM = "https://gmed-cds.org/fhir/CodeSystem/complaints"

GROUPS: tuple[Group, ...] = ("intake", "exam", "movement")
COMPLAINTS: tuple[str, ...] = ("pfp", "itbs", "lbp")


@dataclass(frozen=True)
class Coding:
    """A FHIR Coding: where the feature lives in an EHR."""

    system: str
    code: str
    display: str


@dataclass(frozen=True)
class Feature:
    """One input of the contract (see the module docstring for groups and roles)."""

    name: str
    group: Group
    kind: Kind
    label: str
    unit: str | None = None
    ucum: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()
    allowed_labels: tuple[str, ...] = ()
    allowed_codes: tuple[tuple[Coding, ...], ...] = ()
    reference: str | None = None
    monotone: int = 0
    role: Role = "model"
    code: Coding | None = None
    derived_from: tuple[str, ...] = ()
    row_column: str | None = None
    help: str = ""
    required: bool = False
    procedure: str | None = None
    applies_when: tuple[str, str] | None = None

    @property
    def coding(self) -> Coding:
        """The feature's FHIR coding: its standard code, or its local one."""
        return self.code or Coding(LOCAL_SYSTEM, self.name, self.label)

    @property
    def condition(self) -> str | None:
        """When the finding applies, in words ("main activity is runner"); ``None`` = always."""
        if self.applies_when is None:
            return None
        field, wanted = self.applies_when
        return f"{BY_NAME[field].label.lower()} is {wanted}"

    def applies_to(self, record: Mapping[str, Any]) -> bool:
        """Whether this finding applies to the patient of ``record`` (its ``applies_when``)."""
        return self.applies_when is None or record.get(self.applies_when[0]) == self.applies_when[1]


def _local(name: str, label: str) -> Coding:
    return Coding(LOCAL_SYSTEM, name, label)


YES_NO = "yes/no"
DYNAMOMETRY = "Hand-held dynamometry of isometric hip abduction, both sides"
SQUAT_VIDEO = "Single-leg squat, frontal-plane video (knee FPPA, pelvic drop, trunk lean)"

FEATURES: tuple[Feature, ...] = (
    # ---------------------------------------------------------------- intake (patient-reported)
    Feature("complaints", "intake", "category", "Presenting complaint(s)", role="rows",
            row_column="complaint", allowed=COMPLAINTS,
            allowed_labels=("Patellofemoral (anterior knee) pain", "IT band syndrome (lateral knee)",
                            "Low back pain"),
            required=True,
            code=Coding(SNOMED, "404684003", "Clinical finding"),
            allowed_codes=(
                (Coding(COMPLAINT_SYSTEM, "pfp", "Patellofemoral pain"),
                 *(Coding(ICD10CM, c, "Chondromalacia patellae") for c in
                   ("M22.2X1", "M22.2X2", "M22.2X3", "M22.2X9"))),
                (Coding(COMPLAINT_SYSTEM, "itbs", "Iliotibial band syndrome"),
                 *(Coding(ICD10CM, c, "Iliotibial band syndrome") for c in
                   ("M76.30", "M76.31", "M76.32"))),
                (Coding(COMPLAINT_SYSTEM, "lbp", "Low back pain"),
                 *(Coding(ICD10CM, c, "Low back pain") for c in
                   ("M54.5", "M54.50", "M54.51", "M54.59")),
                 Coding(SNOMED, "279039007", "Low back pain")),
            ),
            help="One model result per complaint. Condition codes: ours first, then "
                 "ICD-10-CM and SNOMED CT."),
    Feature("age_years", "intake", "integer", "Age", unit="years", ucum="a",
            minimum=18, maximum=90, required=True,
            code=Coding(LOINC, "30525-0", "Age")),
    Feature("sex", "intake", "category", "Sex", allowed=("female", "male"),
            allowed_labels=("Female", "Male"), required=True,
            code=Coding(LOINC, "46098-0", "Sex")),
    Feature("bmi_kg_m2", "intake", "number", "Body mass index", unit="kg/m²", ucum="kg/m2",
            minimum=14, maximum=60, reference="19-29",
            code=Coding(LOINC, "39156-5", "Body mass index (BMI) [Ratio]")),
    Feature("activity_profile", "intake", "category", "Main activity",
            allowed=("runner", "cyclist", "general"),
            allowed_labels=("Runner", "Cyclist", "General / other")),
    Feature("side", "intake", "category", "Side of pain", allowed=("left", "right", "bilateral"),
            allowed_labels=("Left", "Right", "Both sides / central"),
            help="For low back pain: the side the pain shifts to, or both."),
    Feature("pain_nrs", "intake", "integer", "Pain, 0-10 numeric rating", unit="/10",
            ucum="{score}", minimum=0, maximum=10,
            code=Coding(LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported")),
    Feature("symptom_duration_months", "intake", "number", "Symptom duration", unit="months",
            ucum="mo", minimum=0, maximum=240),
    Feature("pain_worse_single_leg_loading", "intake", "boolean",
            "Pain worse with single-leg loading (stairs, hopping, standing on one leg)",
            unit=YES_NO, monotone=1),
    Feature("pain_worse_late_in_activity", "intake", "boolean",
            "Pain comes on late in a run or long walk", unit=YES_NO, monotone=1),
    Feature("lateral_hip_pain", "intake", "boolean", "Lateral hip pain alongside", unit=YES_NO,
            monotone=1),
    Feature("prior_local_care_no_improvement", "intake", "boolean",
            "Months of knee- or back-focused care without improvement", unit=YES_NO, monotone=1),
    Feature("knee_locking_or_giving_way", "intake", "boolean",
            "Knee locking or giving way (points to the joint)", unit=YES_NO, monotone=-1),
    Feature("leg_pain_below_knee_with_numbness", "intake", "boolean",
            "Leg pain below the knee with numbness (points to a nerve root)", unit=YES_NO,
            monotone=-1),
    # red flags: never model inputs
    Feature("rf_trauma_rapid_swelling", "intake", "boolean",
            "Trauma with rapid swelling (within 2 h)", unit=YES_NO, role="red_flag"),
    Feature("rf_fever", "intake", "boolean", "Fever or feeling systemically unwell", unit=YES_NO,
            role="red_flag"),
    Feature("rf_unexplained_weight_loss", "intake", "boolean", "Unexplained weight loss",
            unit=YES_NO, role="red_flag"),
    Feature("rf_night_pain", "intake", "boolean", "Constant pain at night, not eased by rest",
            unit=YES_NO, role="red_flag"),
    Feature("rf_saddle_numbness", "intake", "boolean",
            "Saddle numbness or new bladder/bowel disturbance", unit=YES_NO, role="red_flag"),
    Feature("rf_progressive_neuro_deficit", "intake", "boolean",
            "Progressive weakness or numbness in the legs", unit=YES_NO, role="red_flag"),
    # ---------------------------------------------------------------- clinical exam
    Feature("hip_abduction_left_nm_per_kg", "exam", "number",
            "Isometric hip abduction torque, left (hand-held dynamometer)", unit="N·m/kg",
            ucum="N.m/kg", minimum=0.2, maximum=4.0, reference="0.9-2.0", role="input",
            procedure=DYNAMOMETRY),
    Feature("hip_abduction_right_nm_per_kg", "exam", "number",
            "Isometric hip abduction torque, right (hand-held dynamometer)", unit="N·m/kg",
            ucum="N.m/kg", minimum=0.2, maximum=4.0, reference="0.9-2.0", role="input",
            procedure=DYNAMOMETRY),
    Feature("hip_abduction_symptomatic_nm_per_kg", "exam", "number",
            "Hip abduction torque, painful side (weaker side if both)", unit="N·m/kg",
            ucum="N.m/kg", minimum=0.2, maximum=4.0, reference="0.9-2.0", monotone=-1,
            role="derived",
            derived_from=("hip_abduction_left_nm_per_kg", "hip_abduction_right_nm_per_kg", "side")),
    Feature("hip_abduction_asymmetry_pct", "exam", "number",
            "Hip abduction deficit against the other side", unit="%", ucum="%",
            minimum=-100, maximum=100, reference="-12 to 12", monotone=1, role="derived",
            derived_from=("hip_abduction_left_nm_per_kg", "hip_abduction_right_nm_per_kg", "side")),
    Feature("trendelenburg_sign", "exam", "boolean", "Trendelenburg sign positive", unit=YES_NO,
            monotone=1, procedure="Trendelenburg test (single-leg stance, observe the pelvis)"),
    Feature("single_leg_stance_30s_pain", "exam", "boolean",
            "Lateral hip pain within 30 s of single-leg stance", unit=YES_NO, monotone=1,
            procedure="30-second single-leg stance test"),
    Feature("trochanter_tenderness", "exam", "boolean", "Greater trochanter tenderness",
            unit=YES_NO, monotone=1, procedure="Palpation of the greater trochanter"),
    Feature("foot_posture_index", "exam", "integer", "Foot Posture Index (FPI-6)",
            unit="points", ucum="{score}", minimum=-12, maximum=12, reference="0 to 6",
            help="Positive is pronated.", procedure="Foot Posture Index (FPI-6)"),
    Feature("knee_effusion", "exam", "boolean", "Knee effusion (points to the joint)",
            unit=YES_NO, monotone=-1, procedure="Knee effusion test (sweep / patellar tap)"),
    Feature("straight_leg_raise_positive", "exam", "boolean",
            "Straight-leg raise positive (points to a nerve root)", unit=YES_NO, monotone=-1,
            procedure="Straight-leg raise"),
    # ---------------------------------------------------------------- movement analysis
    Feature("single_leg_squat_knee_fppa_deg", "movement", "number",
            "Single-leg squat: knee frontal-plane projection angle (valgus +)", unit="°",
            ucum="deg", minimum=-20, maximum=45, reference="2-16", monotone=1, procedure=SQUAT_VIDEO),
    Feature("single_leg_squat_pelvic_drop_deg", "movement", "number",
            "Single-leg squat: contralateral pelvic drop", unit="°", ucum="deg",
            minimum=-15, maximum=25, reference="1-9", monotone=1, procedure=SQUAT_VIDEO),
    Feature("single_leg_squat_trunk_lean_deg", "movement", "number",
            "Single-leg squat: ipsilateral trunk lean", unit="°", ucum="deg",
            minimum=-15, maximum=30, reference="0-9", monotone=1, procedure=SQUAT_VIDEO),
    Feature("running_pelvic_drop_deg", "movement", "number",
            "Running: contralateral pelvic drop (runners)", unit="°", ucum="deg",
            minimum=-5, maximum=20, reference="2-8", monotone=1,
            procedure="Running gait analysis (video or sensors), frontal plane",
            applies_when=("activity_profile", "runner")),
)

BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
RED_FLAGS: tuple[Feature, ...] = tuple(f for f in FEATURES if f.role == "red_flag")
ROWS: Feature = next(f for f in FEATURES if f.role == "rows")


def _model_columns() -> tuple[str, ...]:
    cols: list[str] = []
    for f in FEATURES:
        if f.role == "rows":
            assert f.row_column is not None
            cols.append(f.row_column)
        elif f.role in ("model", "derived"):
            cols.append(f.name)
    return tuple(cols)


MODEL_COLUMNS: tuple[str, ...] = _model_columns()
"""The model's column order."""

def column_feature(column: str) -> Feature:
    """The feature that declares a model column (``complaint`` is declared by ``complaints``)."""
    if column == ROWS.row_column:
        return ROWS
    return BY_NAME[column]


CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(c for c in MODEL_COLUMNS if column_feature(c).kind == "category")
"""Model columns LightGBM treats as categorical (coded by position in ``allowed``)."""


def monotone_constraints() -> list[int]:
    """LightGBM ``monotone_constraints`` in model column order."""
    return [column_feature(c).monotone for c in MODEL_COLUMNS]


def record_fields() -> tuple[Feature, ...]:
    """Fields of a patient record: everything but derived columns."""
    return tuple(f for f in FEATURES if f.role != "derived")


def _property_schema(f: Feature) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": f.label}
    desc = []
    if f.unit and f.unit != YES_NO:
        desc.append(f"Unit: {f.unit}.")
    if f.reference:
        desc.append(f"Reference (pain-free adults): {f.reference}.")
    if f.help:
        desc.append(f.help)
    if desc:
        schema["description"] = " ".join(desc)
    null = [] if f.required else ["null"]  # a required field must have a value
    if f.kind == "boolean":
        schema["type"] = ["boolean", *null]
    elif f.kind == "category":
        schema["enum"] = [*f.allowed, *(None for _ in null)]
    else:
        schema["type"] = ["integer" if f.kind == "integer" else "number", *null]
        if f.minimum is not None:
            schema["minimum"] = f.minimum
        if f.maximum is not None:
            schema["maximum"] = f.maximum
    if f.role == "rows":
        item = {k: v for k, v in schema.items() if k not in ("title", "description")}
        item["enum"] = list(f.allowed)
        return {"title": f.label, "type": "array", "items": item, "minItems": 1,
                "maxItems": len(f.allowed), "uniqueItems": True}
    return schema


def record_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a patient record, derived from the table."""
    fields = record_fields()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://gmed-cds.org/schema/patient-record.json",
        "title": "Patient record for the gluteus medius driver assessment",
        "description": "Any field may be omitted or null (not assessed) unless required. "
                       "Groups: " + ", ".join(
                           f"{g}: " + ", ".join(f.name for f in fields if f.group == g)
                           for g in GROUPS),
        "type": "object",
        "properties": {
            "patient_id": {"type": ["string", "null"], "maxLength": 128,
                           "description": "Opaque patient reference (never a name); Unicode "
                                          "text (an unpaired surrogate escape is refused)."},
            **{f.name: _property_schema(f) for f in fields},
        },
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }


def contract_table() -> list[dict[str, Any]]:
    """The table as plain data (for ``GET /v1/features``, docs and hashing)."""
    rows = []
    for f in FEATURES:
        row = asdict(f)
        row["code"] = asdict(f.coding)
        row["allowed"] = list(f.allowed)
        row["allowed_labels"] = list(f.allowed_labels)
        row["allowed_codes"] = [[asdict(c) for c in codes] for codes in f.allowed_codes]
        row["derived_from"] = list(f.derived_from)
        rows.append(row)
    return rows


_MODEL_RELEVANT = ("name", "kind", "role", "allowed", "derived_from", "row_column", "monotone",
                   "applies_when")


def contract_hash() -> str:
    """SHA-256 of what a trained model depends on: columns, kinds, encodings, constraints.

    Labels, codes, units' wording and reference ranges can change without retraining; a change
    to anything hashed here makes an existing model refuse to load.
    """
    relevant = [{k: row[k] for k in _MODEL_RELEVANT} for row in contract_table()]
    blob = json.dumps({"features": relevant, "columns": MODEL_COLUMNS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
