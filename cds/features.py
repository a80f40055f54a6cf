"""The input contract: one declarative table of every input the product knows.

Everything else derives from :data:`FEATURES`: record validation and the JSON Schema of a
patient record, the model's column order and monotone constraints, the training-data schema,
the FHIR mapping, the intake form and the words of an explanation. Code reads this table; it
never restates it. The row type and the applicability rule live in :mod:`cds.contract`.

Groups follow the care setting in which a finding becomes available:

* ``intake``   - patient-reported (questionnaire at the front desk);
* ``exam``     - in-clinic examination, including hand-held dynamometry;
* ``movement`` - movement analysis (video or sensors), running analysis for runners.

Roles:

* ``model``    - a column of the model as recorded;
* ``rows``     - a list in the record; the model gets one row per element, in column ``row_column``;
* ``derived``  - a model column computed in :mod:`cds.intake` from the ``derived_from`` inputs;
* ``input``    - recorded but feeds the model only through a derived column (or, for a
  dynamometer reading in N or kgf, through the torque it converts to);
* ``red_flag`` - a safety question; a ``True`` routes the patient to referral, never to a score.

``procedure`` names the clinical test that records an exam or movement finding: the unit of a
"next best assessment". ``complaints`` and ``profiles`` say to whom a finding applies (Ober's
test: IT band syndrome only; running analysis: runners only); see :mod:`cds.contract`.

Monotone directions: each ``monotone`` carries its ``evidence``. ``+1`` = a higher value (or
"yes") can only raise the estimate, ``-1`` only lower it, ``0`` = left to the data (a
co-existing source such as gluteal tendinopathy, or no published direction).

Reference ranges are the 10th-90th percentile of pain-free people (the simulated controls; a
test checks the table against them); strength is sex- and age-specific (:mod:`cds.norms`).

Codes: every finding has a code of the product's local code system :data:`LOCAL_SYSTEM` (the
feature name), and ``code``, its LOINC or SNOMED CT code, where one exists and was checked
against the system's own text; :mod:`cds.codes` says why the others have none and codes each
``procedure`` as an orderable.

Long: one declarative table, one row per finding with its evidence beside it; splitting it by
group would make readers (validation, the model's columns, FHIR, the form) join the parts again.
"""

from __future__ import annotations

import math

from . import norms
from .contract import COMPLAINT_LABELS as COMPLAINT_LABELS
from .contract import COMPLAINT_SYSTEM as COMPLAINT_SYSTEM
from .contract import COMPLAINTS as COMPLAINTS
from .contract import GROUPS as GROUPS
from .contract import ICD10CM as ICD10CM
from .contract import KNEE as KNEE
from .contract import LOCAL_SYSTEM as LOCAL_SYSTEM
from .contract import LOINC as LOINC
from .contract import PROFILE_LABELS as PROFILE_LABELS
from .contract import PROFILES as PROFILES
from .contract import SNOMED as SNOMED
from .contract import Coding as Coding
from .contract import Feature as Feature
from .contract import Group as Group
from .contract import Kind as Kind
from .contract import Role as Role

YES_NO = "yes/no"
DYNAMOMETRY = "Hand-held dynamometry of isometric hip abduction, both sides"
STRENGTH = "Hand-held dynamometry: knee extension, hip external rotation and extension (painful side)"
SQUAT_VIDEO = "Single-leg squat, frontal-plane video (knee FPPA, pelvic drop, trunk lean, hip adduction)"
ITB_TESTS = "IT band tests (Ober test, Noble compression test)"
TENDINOPATHY = "gluteal tendinopathy, a co-existing source of lateral hip pain"
_TORQUE_HELP = ("Torque = force x lever arm / body mass. Enter the torque, or the dynamometer "
                "force (N or kgf) with the lever arm and body mass. Pain-free people by sex and "
                "age (10th-90th percentile, supine belt-fixed): "
                + norms.reference_text("hip_abduction") + ".")
_PCT_SPREAD = math.exp(norms.Z90 * norms.ABDUCTION.log_sd)


def _age_reference(muscle: str) -> str:
    lo_f, hi_f = norms.reference_range(muscle, "female", 25)
    lo_m, hi_m = norms.reference_range(muscle, "male", 25)
    return f"by sex and age; at 25 y F {lo_f:.2f}-{hi_f:.2f}, M {lo_m:.2f}-{hi_m:.2f}"


def _torque(side: str) -> Feature:
    return Feature(
        f"hip_abduction_{side}_nm_per_kg", "exam", "number",
        f"Isometric hip abduction torque, {side} (hand-held dynamometer)", unit="N·m/kg",
        ucum="N.m/kg", minimum=0.2, maximum=4.0, reference=_age_reference("hip_abduction"),
        role="input", procedure=DYNAMOMETRY, norm="hip_abduction", help=_TORQUE_HELP)


def _force(side: str, unit: str) -> Feature:
    n = unit == "N"
    return Feature(
        f"hip_abduction_{side}_force_{'n' if n else 'kgf'}", "exam", "number",
        f"Hip abduction force, {side}, dynamometer reading in {unit}", unit=unit,
        ucum="N" if n else "kgf", minimum=10 if n else 1, maximum=1500 if n else 150,
        role="input", procedure=DYNAMOMETRY, converts_to=f"hip_abduction_{side}_nm_per_kg",
        help="Converted to N·m/kg with the lever arm and body mass; give the torque or the "
             "force for a side, not both.")


def _strength(name: str, muscle: str, label: str, monotone: int, evidence: str,
              points_to: str, complaints: tuple[str, ...] = COMPLAINTS) -> Feature:
    return Feature(name, "exam", "number", label, unit="N·m/kg", ucum="N.m/kg", minimum=0.1,
                   maximum=6.0, reference=_age_reference(muscle), monotone=monotone,
                   procedure=STRENGTH, norm=muscle, evidence=evidence, points_to=points_to,
                   complaints=complaints,
                   help="Pain-free people by sex and age (10th-90th percentile): "
                        + norms.reference_text(muscle) + ".")


def _red_flag(name: str, label: str, evidence: str, complaints: tuple[str, ...] = COMPLAINTS,
              code: Coding | None = None) -> Feature:
    return Feature(name, "intake", "boolean", label, unit=YES_NO, role="red_flag",
                   evidence=evidence, complaints=complaints, code=code)


FEATURES: tuple[Feature, ...] = (
    # ---------------------------------------------------------------- intake (patient-reported)
    Feature("complaints", "intake", "category", "Presenting complaint(s)", role="rows",
            row_column="complaint", allowed=COMPLAINTS, allowed_labels=COMPLAINT_LABELS,
            required=True,
            code=Coding(SNOMED, "404684003", "Clinical finding"),
            allowed_codes=(
                # ICD-10-CM displays as in its tabular list (FY2022 on): M22.2- is
                # "Patellofemoral disorders" (chondromalacia is M22.4-); M54.5 was split into
                # M54.50/.51/.59 in October 2021 and is no longer a valid code
                (Coding(COMPLAINT_SYSTEM, "pfp", "Patellofemoral pain"),
                 Coding(ICD10CM, "M22.2X1", "Patellofemoral disorders, right knee"),
                 Coding(ICD10CM, "M22.2X2", "Patellofemoral disorders, left knee"),
                 Coding(ICD10CM, "M22.2X9", "Patellofemoral disorders, unspecified knee")),
                (Coding(COMPLAINT_SYSTEM, "itbs", "Iliotibial band syndrome"),
                 Coding(ICD10CM, "M76.30", "Iliotibial band syndrome, unspecified leg"),
                 Coding(ICD10CM, "M76.31", "Iliotibial band syndrome, right leg"),
                 Coding(ICD10CM, "M76.32", "Iliotibial band syndrome, left leg")),
                (Coding(COMPLAINT_SYSTEM, "lbp", "Low back pain"),
                 Coding(ICD10CM, "M54.50", "Low back pain, unspecified"),
                 Coding(ICD10CM, "M54.51", "Vertebrogenic low back pain"),
                 Coding(ICD10CM, "M54.59", "Other low back pain"),
                 Coding(SNOMED, "279039007", "Low back pain")),
            ),
            help="One model result per complaint. Condition codes: ours first, then "
                 "ICD-10-CM and SNOMED CT."),
    Feature("age_years", "intake", "integer", "Age", unit="years", ucum="a",
            minimum=12, maximum=90, required=True,
            code=Coding(LOINC, "30525-0", "Age"),
            limit_reason="the model covers ages 12-90, adolescents with their own strength "
                         "norms; knee pain in younger children has other causes and is not "
                         "modelled"),
    Feature("sex", "intake", "category", "Sex", allowed=("female", "male"),
            allowed_labels=("Female", "Male"), required=True,
            code=Coding(LOINC, "46098-0", "Sex")),
    Feature("bmi_kg_m2", "intake", "number", "Body mass index", unit="kg/m²", ucum="kg/m2",
            minimum=14, maximum=60, reference="19-29",
            code=Coding(LOINC, "39156-5", "Body mass index (BMI) [Ratio]")),
    Feature("body_mass_kg", "intake", "number", "Body mass", unit="kg", ucum="kg",
            minimum=25, maximum=250, role="input",
            code=Coding(LOINC, "29463-7", "Body weight"),
            help="Needed to turn a dynamometer force into torque per kilogram."),
    Feature("activity_profile", "intake", "category", "Main activity", allowed=PROFILES,
            allowed_labels=PROFILE_LABELS),
    Feature("side", "intake", "category", "Side of pain", allowed=("left", "right", "bilateral"),
            allowed_labels=("Left", "Right", "Both sides / central"),
            help="For low back pain: the side the pain shifts to, or both."),
    Feature("pain_nrs", "intake", "integer", "Pain, 0-10 numeric rating", unit="/10",
            ucum="{score}", minimum=0, maximum=10,
            code=Coding(LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported")),
    Feature("symptom_duration_months", "intake", "number", "Symptom duration", unit="months",
            ucum="mo", minimum=0, maximum=240, monotone=-1, points_to="a poorer prognosis",
            evidence="Long duration predicts a poorer outcome of treatment (Collins 2013; "
                     "Lankhorst 2016; Matthews 2017); the label requires a response to a hip "
                     "programme, so duration can only lower the estimate."),
    Feature("pain_worse_single_leg_loading", "intake", "boolean",
            "Pain worse with single-leg loading (stairs, hopping, standing on one leg)",
            unit=YES_NO, monotone=1, points_to="hip abductor demand",
            evidence="Single-leg loading is where the abductors hold the pelvis (Neumann 2010); "
                     "CLINICAL.md causal structure."),
    Feature("pain_worse_late_in_activity", "intake", "boolean",
            "Pain comes on late in a run, at a predictable distance", unit=YES_NO, monotone=1,
            profiles=("runner",), points_to="fatigue of the hip abductors",
            evidence="Runners with ITBS show more hip adduction (Noehren 2007) and weaker "
                     "abductors (Fredericson 2000); asked of runners only."),
    Feature("training_load_change_recent", "intake", "boolean",
            "Recent change in training load (distance, pace, hills, new bike or shoes)",
            unit=YES_NO, monotone=-1, profiles=("runner", "cyclist"),
            points_to="a training error, a load explanation",
            evidence="Training errors precede running injuries (Nielsen 2014); a load spike is "
                     "an alternative explanation managed by load."),
    Feature("lateral_hip_pain", "intake", "boolean",
            "Lateral hip pain alongside (may point to gluteal tendinopathy)", unit=YES_NO,
            points_to=TENDINOPATHY,
            evidence="Lateral hip pain is the cardinal symptom of gluteal tendinopathy "
                     "(Grimaldi 2017), which co-exists with abductor weakness (Allison 2016): "
                     "no fixed direction for a hip driver."),
    Feature("prior_local_care_no_improvement", "intake", "boolean",
            "Months of knee- or back-focused care without improvement", unit=YES_NO, monotone=1,
            points_to="a proximal driver",
            evidence="Hip plus knee exercise beats knee exercise alone in PFP (Nascimento "
                     "2018); CLINICAL.md causal structure."),
    Feature("knee_locking_or_giving_way", "intake", "boolean",
            "Knee locking or giving way (points to the joint)", unit=YES_NO, monotone=-1,
            complaints=KNEE, points_to="the knee joint (intra-articular)",
            evidence="An intra-articular mechanism is a competing explanation (CLINICAL.md)."),
    Feature("leg_pain_below_knee_with_numbness", "intake", "boolean",
            "Leg pain below the knee with numbness (points to a nerve root)", unit=YES_NO,
            monotone=-1, complaints=("lbp",), points_to="a nerve root (radiculopathy)",
            evidence="Radicular pain is a competing explanation of low back pain (NICE NG59)."),
    # red flags: never model inputs; each cited
    _red_flag("rf_trauma_rapid_swelling", "Trauma with rapid swelling (within 2 h)",
              "Haemarthrosis after trauma: fracture or ligament rupture (Stiell 1996; NICE "
              "CKS knee pain)", complaints=KNEE),
    _red_flag("rf_unable_to_bear_weight",
              "Unable to bear weight (4 steps) after an injury",
              "Ottawa knee rule: inability to bear weight immediately and when examined "
              "(Stiell 1996)", complaints=KNEE),
    _red_flag("rf_hot_swollen_joint", "Hot, swollen, red joint",
              "Septic arthritis until proven otherwise (Coakley 2006 BSR guideline; "
              "Margaretten 2007)", complaints=KNEE),
    _red_flag("rf_limp_or_painful_hip_rotation",
              "A limp, or painful and restricted hip rotation (adolescent hip)",
              "Slipped capital femoral epiphysis presents as knee pain in adolescents "
              "(Peck 2010)", complaints=KNEE),
    # SNOMED CT codes of the red flags, each checked against published FHIR content (sources in
    # tests/test_ehr_codes.py): 386661006, 422868009, 266987004, 228388006
    _red_flag("rf_fever", "Fever or feeling systemically unwell",
              "Infection (Finucane 2020 international red-flag framework; NICE NG59)",
              code=Coding(SNOMED, "386661006", "Fever (finding)")),
    _red_flag("rf_unexplained_weight_loss", "Unexplained weight loss",
              "Malignancy (Finucane 2020; NICE NG59)",
              code=Coding(SNOMED, "422868009", "Unexplained weight loss (finding)")),
    _red_flag("rf_night_pain", "Constant pain at night, not eased by rest",
              "Malignancy or infection (Finucane 2020; NICE NG59)"),
    _red_flag("rf_history_of_cancer", "History of cancer",
              "The one red flag that clearly raises the probability of spinal malignancy "
              "(Downie 2013; Finucane 2020)",
              code=Coding(SNOMED, "266987004", "History of malignant neoplasm (situation)")),
    _red_flag("rf_immunosuppression", "Immunosuppressed (drugs, HIV, transplant, chemotherapy)",
              "Spinal or joint infection (Finucane 2020; NICE NG59)",
              code=Coding(SNOMED, "38013005", "Immunosuppression (finding)")),
    _red_flag("rf_iv_drug_use", "Intravenous drug use",
              "Spinal or joint infection (Finucane 2020; NICE NG59)",
              code=Coding(SNOMED, "228388006", "Intravenous drug user (finding)")),
    _red_flag("rf_steroids_or_osteoporosis_minor_trauma",
              "Long-term steroids or osteoporosis, with pain after minor trauma",
              "Vertebral fracture: prolonged corticosteroid use (Downie 2013); Finucane 2020",
              complaints=("lbp",)),
    _red_flag("rf_saddle_numbness", "Saddle numbness or new bladder/bowel disturbance",
              "Cauda equina syndrome (NICE NG59; Finucane 2020)", complaints=("lbp",)),
    _red_flag("rf_progressive_neuro_deficit", "Progressive weakness or numbness in the legs",
              "Progressive neurological deficit (NICE NG59; Finucane 2020)"),
    # ---------------------------------------------------------------- clinical exam
    _torque("left"),
    _torque("right"),
    _force("left", "N"),
    _force("right", "N"),
    _force("left", "kgf"),
    _force("right", "kgf"),
    Feature("hip_abduction_lever_arm_m", "exam", "number",
            "Dynamometer lever arm (hip joint centre to the pad)", unit="m", ucum="m",
            minimum=0.2, maximum=1.2, role="input", procedure=DYNAMOMETRY,
            help="Greater trochanter to the dynamometer pad, usually just above the knee."),
    Feature("hip_abduction_protocol", "exam", "category", "Dynamometry test position",
            allowed=norms.PROTOCOLS,
            allowed_labels=("Supine, belt-fixed", "Side-lying", "Standing"), role="input",
            procedure=DYNAMOMETRY,
            help="Side-lying reads ~27 % higher than supine (Cerda Vega 2018); the norm follows "
                 "the position. Not recorded: supine, belt-fixed."),
    Feature("hip_abduction_pct_of_norm", "exam", "number",
            "Hip abduction torque, painful side (weaker side if both), % of the norm for sex "
            "and age", unit="% of norm", ucum="%", minimum=5, maximum=400,
            reference=f"{100 / _PCT_SPREAD:.0f}-{100 * _PCT_SPREAD:.0f}", monotone=-1,
            role="derived", points_to="hip abductor weakness",
            derived_from=("hip_abduction_left_nm_per_kg", "hip_abduction_right_nm_per_kg",
                          "side", "sex", "age_years", "hip_abduction_protocol"),
            evidence="Weaker abductors in PFP, ITBS and CLBP than in controls (Prins 2009; "
                     "Fredericson 2000; Cooper 2016; de Sousa 2019)."),
    Feature("hip_abduction_asymmetry_pct", "exam", "number",
            "Hip abduction deficit against the other side", unit="%", ucum="%",
            minimum=-100, maximum=100, reference="-12 to 12", monotone=1, role="derived",
            points_to="hip abductor weakness, painful side",
            derived_from=("hip_abduction_left_nm_per_kg", "hip_abduction_right_nm_per_kg", "side"),
            evidence="The injured side is the weaker one in ITBS (Fredericson 2000) and CLBP "
                     "(Cooper 2016)."),
    _strength("knee_extension_nm_per_kg", "knee_extension",
              "Isometric knee extension (quadriceps) torque, painful side", 1,
              "Quadriceps weakness is the main competing driver of PFP and a prospective risk "
              "factor, unlike hip weakness (Lankhorst 2013; Neal 2019): the stronger the "
              "quadriceps, the more the hip remains the explanation.",
              "quadriceps weakness, a competing driver", complaints=("pfp",)),
    _strength("hip_external_rotation_nm_per_kg", "hip_external_rotation",
              "Isometric hip external rotation torque, painful side", -1,
              "Weaker hip external rotators in PFP (Prins 2009; Rathleff 2014).",
              "hip weakness"),
    _strength("hip_extension_nm_per_kg", "hip_extension",
              "Isometric hip extension torque, painful side", -1,
              "Weaker hip extensors in PFP and CLBP (Prins 2009; de Sousa 2019).",
              "hip weakness"),
    Feature("trendelenburg_sign", "exam", "boolean", "Trendelenburg sign positive", unit=YES_NO,
            monotone=1, procedure="Trendelenburg test (single-leg stance, observe the pelvis)",
            points_to="hip abductor weakness",
            evidence="Sign of abductor insufficiency (Bird 2001; McCarney 2020)."),
    Feature("single_leg_stance_30s_pain", "exam", "boolean",
            "Lateral hip pain within 30 s of single-leg stance (gluteal tendinopathy sign)",
            unit=YES_NO, procedure="30-second single-leg stance test", points_to=TENDINOPATHY,
            evidence="Specific for gluteal tendinopathy (Lequesne 2008; Grimaldi 2017): a "
                     "co-existing source, no fixed direction for a hip driver."),
    Feature("trochanter_tenderness", "exam", "boolean",
            "Greater trochanter tenderness (gluteal tendinopathy sign)", unit=YES_NO,
            procedure="Palpation of the greater trochanter", points_to=TENDINOPATHY,
            evidence="Sensitive, not specific, for gluteal tendinopathy (Grimaldi 2017)."),
    Feature("pain_resisted_hip_abduction", "exam", "boolean",
            "Lateral hip pain on resisted hip abduction (gluteal tendinopathy sign)",
            unit=YES_NO, procedure="Resisted hip abduction (pain provocation)",
            points_to=TENDINOPATHY,
            evidence="Gluteal tendinopathy provocation test (Grimaldi 2017): a co-existing "
                     "source; pain also limits the strength reading (Allison 2016)."),
    Feature("fadir_positive", "exam", "boolean",
            "FADIR test positive (points to the hip joint)", unit=YES_NO, monotone=-1,
            procedure="FADIR test (flexion, adduction, internal rotation)",
            points_to="the hip joint (intra-articular), a competing explanation",
            evidence="Sensitive test for intra-articular hip pathology (Reiman 2015), which "
                     "refers pain to the knee and mimics back pain."),
    Feature("ober_test_positive", "exam", "boolean", "Ober test positive (IT band tension)",
            unit=YES_NO, complaints=("itbs",), procedure=ITB_TESTS,
            points_to="IT band / TFL tension",
            evidence="Describes the IT band (Fredericson & Wolf 2005); no published direction "
                     "for abductor weakness."),
    Feature("noble_compression_positive", "exam", "boolean",
            "Noble compression test positive (lateral femoral condyle pain at ~30° flexion)",
            unit=YES_NO, complaints=("itbs",), procedure=ITB_TESTS,
            points_to="IT band syndrome (confirms the diagnosis)",
            evidence="Diagnostic for ITBS (Noble 1980); no published direction for a hip driver."),
    Feature("foot_posture_index", "exam", "integer", "Foot Posture Index (FPI-6)",
            unit="points", ucum="{score}", minimum=-12, maximum=12, reference="0 to 6",
            help="Positive is pronated.", procedure="Foot Posture Index (FPI-6)", complaints=KNEE,
            points_to="a distal (foot) contribution",
            evidence="Pronation weakly associated with PFP (Neal 2014): no fixed direction."),
    Feature("knee_effusion", "exam", "boolean", "Knee effusion (points to the joint)",
            unit=YES_NO, monotone=-1, procedure="Knee effusion test (sweep / patellar tap)",
            complaints=KNEE, points_to="the knee joint (intra-articular)",
            evidence="An intra-articular mechanism is a competing explanation (CLINICAL.md)."),
    Feature("straight_leg_raise_positive", "exam", "boolean",
            "Straight-leg raise positive (points to a nerve root)", unit=YES_NO, monotone=-1,
            procedure="Straight-leg raise", complaints=("lbp",),
            points_to="a nerve root (radiculopathy)",
            evidence="Radiculopathy is a competing explanation of low back pain (NICE NG59)."),
    # ---------------------------------------------------------------- movement analysis
    Feature("single_leg_squat_knee_fppa_deg", "movement", "number",
            "Single-leg squat: knee frontal-plane projection angle (valgus +)", unit="°",
            ucum="deg", minimum=-20, maximum=45, reference="2-16", monotone=1,
            procedure=SQUAT_VIDEO, complaints=KNEE, points_to="dynamic knee valgus",
            evidence="Greater FPPA in PFP (Herrington 2014)."),
    Feature("single_leg_squat_pelvic_drop_deg", "movement", "number",
            "Single-leg squat: contralateral pelvic drop", unit="°", ucum="deg",
            minimum=-15, maximum=25, reference="1-9", monotone=1, procedure=SQUAT_VIDEO,
            points_to="hip abductor weakness",
            evidence="More pelvic drop in PFP (Nakagawa 2012)."),
    Feature("single_leg_squat_trunk_lean_deg", "movement", "number",
            "Single-leg squat: ipsilateral trunk lean", unit="°", ucum="deg",
            minimum=-15, maximum=30, reference="0-9", monotone=1, procedure=SQUAT_VIDEO,
            points_to="compensation for weak abductors",
            evidence="More ipsilateral trunk lean in PFP (Nakagawa 2012)."),
    Feature("single_leg_squat_hip_adduction_deg", "movement", "number",
            "Single-leg squat: hip adduction", unit="°", ucum="deg", minimum=-15, maximum=35,
            reference="4-18", monotone=1, procedure=SQUAT_VIDEO,
            points_to="hip abductor weakness",
            evidence="More hip adduction in PFP (Willson & Davis 2008; Nakagawa 2012)."),
    Feature("step_down_quality", "movement", "category",
            "Lateral step-down / single-leg squat quality", allowed=("good", "moderate", "poor"),
            allowed_labels=("Good", "Moderate", "Poor"), ordered=True, monotone=1,
            procedure="Lateral step-down test (movement quality rating)",
            points_to="hip abductor dysfunction",
            evidence="Poor single-leg squat performers have weaker, later-firing hip abductors "
                     "(Crossley 2011); rating of the lateral step-down (Park 2013)."),
    Feature("running_pelvic_drop_deg", "movement", "number",
            "Running: contralateral pelvic drop (runners)", unit="°", ucum="deg",
            minimum=-5, maximum=20, reference="2-8", monotone=1,
            procedure="Running gait analysis (video or sensors), frontal plane",
            profiles=("runner",), points_to="hip abductor weakness",
            evidence="More pelvic drop in injured runners (Bramah 2018)."),
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


CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(
    c for c in MODEL_COLUMNS if column_feature(c).kind == "category" and not column_feature(c).ordered)
"""Model columns LightGBM treats as categorical (coded by position in ``allowed``). An ordered
category (step-down quality) is coded by position too, but read as a number."""


def monotone_constraints() -> list[int]:
    """LightGBM ``monotone_constraints`` in model column order."""
    return [column_feature(c).monotone for c in MODEL_COLUMNS]


def record_fields() -> tuple[Feature, ...]:
    """Fields of a patient record: everything but derived columns."""
    return tuple(f for f in FEATURES if f.role != "derived")


# What the table publishes (the record's JSON Schema, the table as plain data, the hash of what a
# model reads) is built in cds.record_schema; every caller finds it here.
from .record_schema import contract_hash as contract_hash  # noqa: E402
from .record_schema import contract_table as contract_table  # noqa: E402
from .record_schema import record_json_schema as record_json_schema  # noqa: E402
