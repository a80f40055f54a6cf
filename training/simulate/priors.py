"""The simulator's numbers, each beside its source; shared by generation and the exact posterior.

Per-complaint tables are indexed ``(pfp, itbs, lbp, control)``: ``COMPLAINTS`` then pain-free
controls. *choice* marks a number the literature does not give (a modelling choice, tuned to
the plausibility targets of ``CLINICAL.md`` and to the published case-control rows checked in
``tests/test_simulator_literature.py``). Log-scale strength parameters are natural logs of a
ratio to the sex- and age-specific norm of :mod:`cds.norms`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, ndtr

from cds.features import COMPLAINTS
from cds.norms import NORMS

CONTROL = len(COMPLAINTS)  # row of the per-complaint tables used for pain-free controls

# ------------------------------------------------------------------ who presents
COMPLAINT_MIX = np.array([0.40, 0.20, 0.40])  # choice: a mixed musculoskeletal clinic
# female share: PFP 60-67 % (Boling 2010, IRR F:M 2.23; Selfe 2016; Ferber 2015); ITBS ~60 %
# (Taunton 2002); LBP and controls: choice
FEMALE = np.array([0.64, 0.60, 0.55, 0.55])
# Share aged 12-17. PFP peaks in adolescence: annual prevalence 28.9 % in adolescents vs 22.7 %
# in the general population (Smith 2018, PLoS One 13:e0190892); Rathleff 2016 (adolescent PFP
# cohorts). Shares: choice; controls cover 12-17 so the adolescent norms are checked too.
ADOLESCENT = np.array([0.30, 0.08, 0.04, 0.15])
ADULT_AGE_ABOVE_18_MEDIAN = np.array([11.0, 14.0, 25.0, 20.0])  # 18 + lognormal; choice
AGE_LOG_SD = 0.6
# runner, cyclist, general: ITBS is mostly a runner's/cyclist's injury (Taunton 2002); choice
ACTIVITY = np.array([[.35, .10, .55], [.65, .25, .10], [.12, .08, .80], [.25, .10, .65]])
# left, right, bilateral (for LBP: side the pain shifts to); controls: side a weakness favours
SIDE = np.array([[.42, .42, .16], [.44, .44, .12], [.30, .30, .40], [.40, .40, .20]])
BMI_SHIFT = np.array([0.5, -0.8, 1.5, 0.0])  # kg/m², choice; controls' 10-90th ~19-29
BMI_ADOLESCENT = -2.0  # kg/m², choice: adolescents are leaner
BMI_LOG_SD = 0.16
BMI_CUTS = np.log([25.0, 30.0])  # classes O: normal, overweight, obese
PAIN_MEAN, PAIN_SD = np.array([4.5, 5.0, 5.5, 0.0]), 2.0  # NRS, uninformative; choice
DURATION_LOG_MEDIAN = np.log([5.0, 3.0, 7.0, 1.0])  # months, lognormal; choice
DURATION_LOG_SD = 0.9

# ------------------------------------------------------------------ latent state
# W: a hip abductor deficit is present. Weak share: PFP 45-65 % (Selfe 2016), ITBS 30-60 %
# (Fredericson 2000; Beers 2008), CLBP 35-55 %, pain-free 10-25 % (Cooper 2016; de Sousa 2019);
# intercepts tuned to land mid-range.
W_INTERCEPT = np.array([-0.10, 0.30, -0.80, -1.95])
# no age term: weakness is relative to the age- and sex-specific norm, whose decline after 40
# (Allison 2016) is in cds.norms
W_BMI_CLASS = np.array([0.0, 0.25, 0.60])  # choice: adiposity -> weaker relative strength
W_ACTIVITY = np.array([-0.20, -0.10, 0.20])  # choice: runner, cyclist, general
# Adolescents get no shift of their own: cross-sectionally, girls of 12-21 with PFP were 26 %
# weaker in abduction and 36 % in external rotation (Ireland 2003, mean age 15.7), though higher
# abduction strength, not weakness, preceded PFP prospectively (Neal 2019 BJSM 53:270, SMD
# 0.71). Their own priors are the complaint mix above and their norms (cds.norms).
# Severity: when present, the deficit's log ratio to the person's own level is normal. Deficit
# when weak 20-35 % below the norm (Fredericson 2000; Ireland 2003; Allison 2016): median 32 %;
# the SD spreads severity over ~10-45 % (choice). Continuous severity drives every finding
# below and the chance of being a driver.
DEFICIT_LOG_MEAN, DEFICIT_LOG_SD = float(np.log(0.68)), 0.12
CONTRALATERAL_SHARE = 0.55  # unilateral: the other side shares 55 % -> side-to-side ~24 %
# with pain inhibition (10-25 %)
# Pain inhibition of the painful side in every patient (arthrogenic / pain-related inhibition):
# the injured side is weaker than the uninjured side also in patients without a hip deficit
# (Cichanowski 2007; Magalhaes 2010: injured side 20 % weaker in unilateral PFP). Choice of size.
PAIN_INHIBITION = float(np.log(0.91))
# A: alternative cause: none / local (intra-articular knee; lumbar radiculopathy) / hip joint
# (FADIR). choice
ALT_CAUSE = np.array([[.80, .14, .06], [.87, .10, .03], [.72, .20, .08], [1.0, 0.0, 0.0]])
ALT_FACTOR = np.array([1.0, 0.3, 0.3])  # P(H) multiplier under an alternative cause; choice
# Q: quadriceps weakness, the main competing driver of PFP: lower knee-extension torque in PFP
# (Lankhorst 2012, BJSM online, WMD -37 N·m) and in LBP (de Sousa 2019: WMD 0.31 N·m/kg); a
# prospective risk factor in the military (Neal 2019, SMD -0.69). Shares and size: choice.
QUAD_WEAK = np.array([0.35, 0.15, 0.35, 0.10])
QUAD_DEFICIT_LOG_MEAN, QUAD_DEFICIT_LOG_SD = float(np.log(0.75)), 0.10
# P(H) multiplier with quadriceps weakness: a competing driver of PFP only (the contract reads
# knee extension for PFP only), choice
QUAD_FACTOR = np.array([0.6, 1.0, 1.0, 1.0])
# H: hip weakness drives this complaint: P(H | W, severity z, A, Q) =
# expit(DRIVER_LOGIT + DRIVER_PER_SEVERITY z) ALT_FACTOR[A] QUAD_FACTOR^Q; none without W.
# Tuned so the observed label rates land in PFP 15-30 %, ITBS 15-35 %, LBP 5-15 % (Nascimento
# 2018; Matthews 2020; de Jesus 2020; Kendall 2015).
DRIVER_LOGIT = np.array([0.60, 0.30, -1.45, -np.inf])
DRIVER_PER_SEVERITY = 0.6  # choice: a deeper deficit drives the pain more often
# T: gluteal tendinopathy, a co-existing source of lateral hip pain, commoner in women, after
# 40 and with abductor weakness (Allison 2016: ~30 % weaker abductors); in ~20 % of LBP
# referrals (Tortolani 2002); general population 10-25 % at 50-79 y (Segal 2007). choice
T_INTERCEPT = np.array([-3.2, -2.8, -1.9, -3.0])
T_FEMALE, T_AFTER_40, T_WEAK = 0.7, 0.8, 0.8

# ------------------------------------------------------------------ the label (no incorporation)
# The observed label is a clinically meaningful response (>= 2 points on the 0-10 scale, or
# "much better") to a hip-focused programme at 6-8 weeks. A driver responds to the programme
# (and may recover anyway); a non-driver "responds" only by natural recovery or non-specific
# effects. Both become less likely the longer the pain has lasted: long duration predicts a
# poorer course (Collins 2010 BMC Musculoskelet Disord 11:11; Collins 2013 BJSM 47:227: 55 %
# unfavourable at 3 months; Lankhorst 2016; Matthews 2017). At 4 months' duration P(response)
# is 0.85 with and 0.10 without a driver (CLINICAL.md: confirmation sensitivity ~0.85,
# specificity ~0.90); odds fall by RESPONSE_PER_LOG_MONTH per e-fold of duration (choice: odds
# ratio ~0.78 per doubling). The label never reads the dynamometer.
RESPONSE_LOGIT = np.array([float(np.log(0.10 / 0.90)), float(np.log(0.85 / 0.15))])
RESPONSE_REFERENCE_MONTHS = 4.0
RESPONSE_PER_LOG_MONTH = 0.35

# ------------------------------------------------------------------ findings
# Trendelenburg sign for weakness: sens 0.3-0.6, spec 0.6-0.85 (Bird 2001; McCarney 2020):
# logit P = a + b severity (severity 1 = a typical deficit)
TRENDELENBURG = (-1.25, 1.05)
# Gluteal tendinopathy signs, P(positive | T=0), P(positive | T=1): 30-s single-leg stance pain
# spec 0.97-1.0, sens 0.38-1.0 (Grimaldi 2017; Lequesne 2008); greater trochanter tenderness
# sens ~0.8, low spec (Grimaldi 2017); resisted abduction pain sens ~0.5, spec ~0.85 (Grimaldi
# 2017); lateral hip pain is the presenting symptom of tendinopathy (choice)
SIGNS_BY_TENDINOPATHY = {"single_leg_stance_30s_pain": np.array([0.02, 0.60]),
                         "trochanter_tenderness": np.array([0.35, 0.80]),
                         "pain_resisted_hip_abduction": np.array([0.12, 0.55]),
                         "lateral_hip_pain": np.array([0.10, 0.85])}
# P(yes | H=0), P(yes | H=1): symptom pattern of a hip driver (CLINICAL.md structure); choice
SYMPTOMS_BY_DRIVER = {"pain_worse_single_leg_loading": np.array([0.52, 0.76]),
                      "prior_local_care_no_improvement": np.array([0.28, 0.48])}
# Activity-specific symptoms, rows runner / cyclist / general, columns H=0, H=1: "late in a
# run" speaks for a driver in runners only; a recent change in training load is the competing
# explanation (training error) in runners and cyclists (Nielsen 2014). choice
SYMPTOMS_BY_DRIVER_AND_ACTIVITY = {
    "pain_worse_late_in_activity": np.array([[.42, .64], [.40, .40], [.35, .35]]),
    "training_load_change_recent": np.array([[.45, .28], [.40, .28], [.12, .12]])}
# P(yes | A) per complaint row, A = none / local / hip joint; choice. FADIR: sensitive, not
# specific, for intra-articular hip pathology (Reiman 2015).
ALT_FINDINGS = {
    "knee_effusion": np.array([[.05, .50, .05], [.04, .45, .04], [.03, .03, .03],
                               [.01, .01, .01]]),
    "knee_locking_or_giving_way": np.array([[.10, .55, .12], [.08, .50, .10], [.05, .05, .05],
                                            [.03, .03, .03]]),
    "straight_leg_raise_positive": np.array([[.04, .04, .04], [.04, .04, .04], [.12, .65, .15],
                                             [.02, .02, .02]]),
    "leg_pain_below_knee_with_numbness": np.array([[.03, .03, .03], [.03, .03, .03],
                                                   [.10, .70, .10], [.01, .01, .01]]),
    "fadir_positive": np.array([[.15, .15, .90], [.15, .15, .90], [.25, .25, .90],
                                [.08, .08, .08]])}
# IT band tests, P(positive) by complaint row, independent of the latents: they confirm the
# diagnosis, not the driver (Ober test; Noble compression). choice
ITB_TESTS = {"ober_test_positive": np.array([0.20, 0.55, 0.15, 0.12]),
             "noble_compression_positive": np.array([0.05, 0.70, 0.03, 0.02])}
RED_FLAG_ANY = 0.02  # ~2 % of cases have some red flag; each flag equally rare, independent

# ------------------------------------------------------------------ strength (log ratio to norm)
# Hip abduction torque of both sides: the norm (cds.norms median by sex and age) x BMI class x
# person effect x session error shared by both sides x side error, then the deficit (painful
# side, the other side its CONTRALATERAL_SHARE) and pain inhibition (painful side). Controls
# reproduce the norm table (median and 10th-90th percentiles; a test checks).
TORQUE_BMI_CLASS = np.log([1.0, 0.93, 0.84])  # choice: per-kg torque falls with adiposity
ERROR_SD, ERROR_SIDE_CORR = 0.10, 0.75  # dynamometer CV 10-15 % per side (Thorborg 2010); a
# session share is common to both sides (tester, fixation): healthy sides differ by ~12 %
CONTROL_WEAK_SHARE = 0.12  # the controls' expected weak share (W_INTERCEPT row 3), for sizing


def _mixture_var(carried: float) -> float:
    """Variance the controls' weakness and BMI mix add to log torque (for sizing PERSON_SD)."""
    p, mean = CONTROL_WEAK_SHARE, carried * DEFICIT_LOG_MEAN
    weak = p * (1 - p) * mean**2 + p * (carried * DEFICIT_LOG_SD) ** 2
    bmi = float(np.var(TORQUE_BMI_CLASS[[0] * 60 + [1] * 30 + [2] * 10]))
    return weak + bmi


PERSON_SD = float(np.sqrt(NORMS["hip_abduction"].log_sd ** 2 - ERROR_SD**2 - _mixture_var(1.0)))
# the controls' median sits on the norm: offsets for the BMI mix and the weak share (tuned)
NORM_OFFSET = {"hip_abduction": 0.045, "hip_external_rotation": 0.045, "hip_extension": 0.040,
               "knee_extension": 0.035}
# Painful-side torque of the other muscle groups: (field, norm, share of the abductor deficit
# carried, pain inhibition). Deficits beside abduction: hip ER 17 % (Nakagawa 2012) to 36 %
# (Ireland 2003) less in PFP; hip extensors SMD 0.93 (0.62-1.23) lower in LBP (de Sousa 2019);
# knee extension carries the quadriceps deficit Q instead. Carried shares: choice.
OTHER_STRENGTH = {
    "hip_external_rotation_nm_per_kg": ("hip_external_rotation", 1.0, PAIN_INHIBITION),
    "hip_extension_nm_per_kg": ("hip_extension", 1.0, PAIN_INHIBITION),
    "knee_extension_nm_per_kg": ("knee_extension", 0.0, PAIN_INHIBITION)}
OTHER_SD = {name: float(np.sqrt(NORMS[muscle].log_sd ** 2 - _mixture_var(carried)))
            for name, (muscle, carried, _) in OTHER_STRENGTH.items()}
ABDUCTION_FIELDS = ("hip_abduction_left_nm_per_kg", "hip_abduction_right_nm_per_kg")

# ------------------------------------------------------------------ kinematics (degrees)
# mean by complaint row + shift x severity, residual SD. FPPA: controls 8.4 +/- 5.1, PFP 16.8 +/-
# 5.4 (Herrington 2014); controls 7-9, PFP 15-17 (Ghulam 2021), + female, + pronation (FPI).
# Squat pelvic drop, trunk lean, hip adduction: PFP vs controls 10.3 +/- 4.7 vs 7.4 +/- 3.8,
# 9.3 +/- 5.3 vs 6.7 +/- 3.0, 14.8 +/- 7.8 vs 10.8 +/- 5.6 (Nakagawa 2012, 3-D; our 2-D video
# reads lower, the difference is the target). Running pelvic drop: healthy 4-6°, injured 6-9°,
# SD 2-3, OR 1.8 per degree for injury (Bramah 2018). Weakness shifts keep |r| with W ~0.2-0.45.
FPPA_BASE, FPPA_SD = np.array([12.4, 9.1, 8.1, 7.3]), 5.15
FPPA_WEAK = np.array([3.0, 3.0, 0.0, 3.0])  # knee valgus speaks for hip weakness at the knee only
FPPA_FEMALE, FPPA_PER_FPI_POINT, FPI_CENTRE = 2.0, 0.5, 3.0  # choice
FPI_MEAN, FPI_SD = np.array([3.72, 3.0, 3.0, 3.0]), 2.4  # PFP more pronated, SMD 0.3 (Neal 2014)
KINEMATICS = {  # name: (mean by complaint row, shift at a typical deficit, residual SD)
    "single_leg_squat_pelvic_drop_deg": (np.array([5.7, 5.6, 5.1, 4.6]), 2.0, 3.0),
    "single_leg_squat_trunk_lean_deg": (np.array([5.3, 4.6, 5.6, 4.1]), 2.2, 3.4),
    "single_leg_squat_hip_adduction_deg": (np.array([13.0, 11.8, 11.0, 10.3]), 3.0, 5.6),
    "running_pelvic_drop_deg": (np.array([7.7, 7.7, 7.7, 4.7]), 1.8, 2.25)}
# Lateral step-down quality (Piva 2006 scoring: good / moderate / poor; Crossley 2011: poor
# performers have weaker hip abductors; Park 2013): ordinal probit on base + shift x severity
STEP_DOWN_BASE, STEP_DOWN_WEAK, STEP_DOWN_CUTS = np.array([0.1, 0.0, 0.1, -0.45]), 0.8, (0.0, 1.2)


# ------------------------------------------------------------------ shared functions
def weak_probability(c: np.ndarray, bmi_class: np.ndarray, activity: np.ndarray) -> np.ndarray:
    """P(W=1 | complaint, BMI class, activity), all arrays of one shape."""
    return np.asarray(expit(W_INTERCEPT[c] + W_BMI_CLASS[bmi_class] + W_ACTIVITY[activity]))


def tendinopathy_probability(c: np.ndarray, female: np.ndarray, age: np.ndarray,
                             weak: np.ndarray) -> np.ndarray:
    """P(T=1 | complaint, sex, age, W)."""
    return np.asarray(expit(T_INTERCEPT[c] + T_FEMALE * female + T_AFTER_40 * (age >= 40)
                            + T_WEAK * weak))


def driver_probability(c: np.ndarray, z: np.ndarray, alt: np.ndarray, quad: np.ndarray
                       ) -> np.ndarray:
    """P(H=1 | W=1, severity z, alternative cause, quadriceps weakness), broadcast."""
    return np.asarray(expit(DRIVER_LOGIT[c] + DRIVER_PER_SEVERITY * z) * ALT_FACTOR[alt]
                      * np.where(quad == 1, QUAD_FACTOR[c], 1.0))


def response_probability(h: np.ndarray, log_months: np.ndarray) -> np.ndarray:
    """P(response to the hip programme | H, log symptom duration in months)."""
    return np.asarray(expit(RESPONSE_LOGIT[h] - RESPONSE_PER_LOG_MONTH
                            * (log_months - np.log(RESPONSE_REFERENCE_MONTHS))))


def severity(deficit: np.ndarray) -> np.ndarray:
    """Severity on the scale of a typical deficit (0 none, 1 the median deficit)."""
    return np.asarray(deficit / DEFICIT_LOG_MEAN)


def bmi_log_median(c: np.ndarray, female: np.ndarray, age: np.ndarray) -> np.ndarray:
    return np.asarray(np.log(23.0 + 0.05 * (np.maximum(age, 18.0) - 35.0) + 0.9 * (1.0 - female)
                             + BMI_SHIFT[c] + BMI_ADOLESCENT * (age < 18)))


def bmi_class_probability(c: np.ndarray, female: np.ndarray, age: np.ndarray) -> np.ndarray:
    """P(BMI class | complaint, sex, age): (m, 3)."""
    cdf = ndtr((BMI_CUTS[None, :] - bmi_log_median(c, female, age)[:, None]) / BMI_LOG_SD)
    return np.diff(np.column_stack([np.zeros(len(c)), cdf, np.ones(len(c))]), axis=1)


def bmi_class_effect(bmi_class: np.ndarray, female: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Log torque factor of a BMI class, centred on the pain-free population of that sex and age
    (the norms already hold the usual BMI mix of each age)."""
    expected = bmi_class_probability(np.full(len(female), CONTROL), female, age) @ TORQUE_BMI_CLASS
    return np.asarray(TORQUE_BMI_CLASS[bmi_class] - expected)


def log_norm(muscle: str, female: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Log of the :mod:`cds.norms` median by sex and age (the table, interpolated)."""
    anchors = np.array(NORMS[muscle].anchors)
    women = np.interp(age, anchors[:, 0], anchors[:, 1])
    men = np.interp(age, anchors[:, 0], anchors[:, 2])
    return np.asarray(np.log(np.where(female == 1.0, women, men)))


def fppa_mean(c: np.ndarray, female: np.ndarray, fpi: np.ndarray, sev: np.ndarray | float
              ) -> np.ndarray:
    return np.asarray(FPPA_BASE[c] + FPPA_FEMALE * female
                      + FPPA_PER_FPI_POINT * (fpi - FPI_CENTRE) + FPPA_WEAK[c] * sev)


def step_down_probabilities(c: np.ndarray, sev: np.ndarray) -> np.ndarray:
    """P(good, moderate, poor | complaint, severity): trailing axis of 3."""
    mean = STEP_DOWN_BASE[c] + STEP_DOWN_WEAK * sev
    low, high = ndtr(STEP_DOWN_CUTS[0] - mean), ndtr(STEP_DOWN_CUTS[1] - mean)
    return np.stack([low, high - low, 1.0 - high], axis=-1)
