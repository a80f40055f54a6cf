"""Standard codes the contract does not carry itself: why a finding has none, and orderables.

:data:`UNCODED` gives, for every finding that keeps only its local code, the reason no LOINC or
SNOMED CT code is used (published in the findings CodeSystem by :mod:`service.ehr.terminology`).
:data:`ORDERABLES` codes each ``Feature.procedure`` of :mod:`cds.features` as an orderable
``ServiceRequest.code``. A test (tests/test_ehr_codes.py) keeps both in step with the contract.
"""

from __future__ import annotations

from .contract import SNOMED, Coding
from .features import DYNAMOMETRY, ITB_TESTS, SQUAT_VIDEO, STRENGTH

# ------------------------------------------------------------- findings without a standard code
# Why each finding keeps its local code only (published in the findings CodeSystem). A code is
# added to the contract only once a stored page of its system (a SNOMED CT International Edition browser:
# tx.fhir.org, tx-dev.fhir.org, 35.223.3.115; loinc.org) shows the id with its fully specified
# name, active status and a matching meaning; a code remembered but not shown is not accepted.
# Searched on 2026-12-03 (issue 14): none of the findings below had such a page.
_NOT_FOUND = ("no active SNOMED CT finding (nor LOINC term) for {what} was found in the stored "
              "International Edition browser pages or loinc.org pages{nearest}")
# Nearest concept seen: https://tx-dev.fhir.org/snomed/11000172109-20231115/?id=365839002&type=snomed
# (status current; its parent is Musculoskeletal finding; its children are only "test normal" and
# "test abnormal"). Dynamometry: https://loinc.org/83145-3 (grip strength panel only).
_LOCOMOTOR = ("; the nearest, 365839002 |Locomotor test finding| (current), is a grouper whose "
              "only children are 'Musculoskeletal test normal' and '... abnormal': it names no "
              "test")


def _not_found(what: str, nearest: str = "") -> str:
    return _NOT_FOUND.format(what=what, nearest=nearest) + "."


def _composite(parts: str, rest: str) -> str:
    return (f"A composite question ({parts}, in one answer): no single SNOMED CT concept means "
            f"the same, and {rest}")


def _test_result(test: str, nearest: str = _LOCOMOTOR) -> str:
    return "The result of a named clinical test: " + _not_found(f"a positive {test}", nearest)


_DYNAMOMETRY = ("A hand-held dynamometry reading of one muscle action under this protocol (or "
                "its set-up): the only dynamometer strength terms on the stored loinc.org pages "
                "are for grip (83173-5 / 83174-3 |Grip strength Hand - left / right Dynamometer "
                "[lbf_av]|, loinc.org/83145-3); no LOINC term for hip or knee torque per body "
                "mass, hip abduction force or the test position was found; 60724-2 |Lateral hip "
                "abduction reaction [TIMP]| is an infant motor item, not strength.")
_MOVEMENT = ("A movement-analysis angle or rating of a named task (single-leg squat, step-down, "
             "running): no LOINC term for a frontal-plane angle of this task, and no SNOMED CT "
             "observable, was found in the stored loinc.org or SNOMED CT browser pages.")
_PRODUCT = ("A value the product defines or computes (its own categories or a derived "
            "measure): it has no meaning outside this contract, so no standard code can match.")

UNCODED: dict[str, str] = {
    "activity_profile": _PRODUCT, "side": _PRODUCT,
    "symptom_duration_months": ("A patient-reported duration of this complaint: "
                                + _not_found("the duration of a musculoskeletal complaint")),
    "pain_worse_single_leg_loading": _composite(
        "pain, and its aggravation by single-leg loading",
        _not_found("pain aggravated by single-leg loading")),
    "pain_worse_late_in_activity": _composite(
        "pain, and its onset late in an activity", _not_found("activity-related late pain")),
    "training_load_change_recent": _composite(
        "a change of training, and its recency", "a training load change is not a finding."),
    "lateral_hip_pain": ("A patient-reported site of pain: "
                         + _not_found("lateral (trochanteric) hip pain or hip pain")),
    "prior_local_care_no_improvement": _composite(
        "past treatment of the painful site, and its failure",
        "no situation concept for it was found in the stored browser pages."),
    "knee_locking_or_giving_way": _composite(
        "knee locking, or the knee giving way", _not_found("either", _LOCOMOTOR)),
    "leg_pain_below_knee_with_numbness": _composite(
        "leg pain below the knee, and numbness", _not_found("radicular leg pain")),
    "rf_trauma_rapid_swelling": _composite(
        "an injury, and swelling within 2 h", "haemarthrosis is a diagnosis, not this question."),
    "rf_unable_to_bear_weight": _composite(
        "an injury, and inability to take 4 steps (Ottawa knee rule)",
        _not_found("inability to bear weight after injury")),
    "rf_hot_swollen_joint": _composite(
        "heat, swelling and redness of a joint", _not_found("a hot swollen red joint")),
    "rf_limp_or_painful_hip_rotation": _composite(
        "a limp, or painful restricted hip rotation", _not_found("either")),
    "rf_night_pain": _composite(
        "constant pain at night, and not eased by rest",
        _not_found("night pain or pain at rest")),
    "rf_steroids_or_osteoporosis_minor_trauma": _composite(
        "long-term steroids or osteoporosis, and pain after minor trauma",
        "the situations differ by their cause."),
    "rf_saddle_numbness": _composite(
        "saddle anaesthesia, or new bladder or bowel disturbance",
        _not_found("saddle anaesthesia")),
    "rf_progressive_neuro_deficit": _composite(
        "weakness or numbness of the legs, and its progression",
        _not_found("a progressive neurological deficit of the legs")),
    **{f"hip_abduction_{side}_{what}": _DYNAMOMETRY for side in ("left", "right")
       for what in ("nm_per_kg", "force_n", "force_kgf")},
    "hip_abduction_lever_arm_m": _DYNAMOMETRY, "hip_abduction_protocol": _DYNAMOMETRY,
    "hip_abduction_pct_of_norm": _PRODUCT, "hip_abduction_asymmetry_pct": _PRODUCT,
    "knee_extension_nm_per_kg": _DYNAMOMETRY, "hip_external_rotation_nm_per_kg": _DYNAMOMETRY,
    "hip_extension_nm_per_kg": _DYNAMOMETRY,
    "trendelenburg_sign": _test_result(
        "Trendelenburg sign (hip abductor)",
        _LOCOMOTOR + "; the stored pages on a Trendelenburg test describe the venous "
        "(Brodie-Trendelenburg) test, another test"),
    "single_leg_stance_30s_pain": _test_result("30-second single-leg stance test"),
    "trochanter_tenderness": "A palpation finding: " + _not_found(
        "tenderness of the greater trochanter",
        "; 113011001 |Palpation (procedure)| codes how it is examined (see ORDERABLES), not "
        "what is found"),
    "pain_resisted_hip_abduction": _test_result("resisted hip abduction pain provocation test"),
    "fadir_positive": _test_result("FADIR (flexion, adduction, internal rotation) test"),
    "ober_test_positive": _test_result("Ober test"),
    "noble_compression_positive": _test_result("Noble compression test"),
    "foot_posture_index": ("A score of the Foot Posture Index (FPI-6): no LOINC term for the "
                           "FPI-6 (nor its total score) was found on the stored loinc.org "
                           "pages, and SNOMED CT has no score observable for it that could be "
                           "verified."),
    "knee_effusion": _test_result(
        "knee effusion (sweep or patellar tap)",
        "; the stored pages on knee effusion are clinical texts, and an effusion code known "
        "only from memory is not accepted"),
    "straight_leg_raise_positive": _test_result(
        "straight-leg raise (Lasegue sign)",
        "; the stored pages on it are clinical texts, none a terminology page"),
    **{f"single_leg_squat_{what}": _MOVEMENT
       for what in ("knee_fppa_deg", "pelvic_drop_deg", "trunk_lean_deg", "hip_adduction_deg")},
    "step_down_quality": _MOVEMENT, "running_pelvic_drop_deg": _MOVEMENT,
}
"""Feature name -> why it has no standard code (a test keeps this in step with ``code``)."""

# ------------------------------------------------------------- orderable procedures
# The ``ServiceRequest.code`` of each next test a card proposes: a local code of
# ``https://gmed-cds.org/fhir/CodeSystem/procedures`` (display = the procedure text), and a
# SNOMED CT procedure only where verified: 113011001 |Palpation (procedure)| (HL7 vital-signs
# IG method value set). None of the others had a SNOMED CT procedure that could be verified.
ORDERABLES: dict[str, tuple[str, Coding | None]] = {
    DYNAMOMETRY: ("hip-abduction-dynamometry", None),
    STRENGTH: ("hip-knee-dynamometry", None),
    "Trendelenburg test (single-leg stance, observe the pelvis)": ("trendelenburg-test", None),
    "30-second single-leg stance test": ("single-leg-stance-30s", None),
    "Palpation of the greater trochanter": ("greater-trochanter-palpation",
                                            Coding(SNOMED, "113011001", "Palpation (procedure)")),
    "Resisted hip abduction (pain provocation)": ("resisted-hip-abduction", None),
    "FADIR test (flexion, adduction, internal rotation)": ("fadir-test", None),
    ITB_TESTS: ("it-band-tests", None),
    "Foot Posture Index (FPI-6)": ("foot-posture-index", None),
    "Knee effusion test (sweep / patellar tap)": ("knee-effusion-test", None),
    "Straight-leg raise": ("straight-leg-raise", None),
    SQUAT_VIDEO: ("single-leg-squat-video", None),
    "Lateral step-down test (movement quality rating)": ("lateral-step-down", None),
    "Running gait analysis (video or sensors), frontal plane": ("running-gait-analysis", None),
}
"""Procedure text (``Feature.procedure``) -> (local code, verified SNOMED CT procedure or None)."""
