"""Drawing the simulated cohort: people, their latent state, findings, missingness, the label."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cds.features import BY_NAME, COMPLAINTS, RED_FLAGS

from . import priors as P
from .fields import bounds, generated_fields
from .posterior import true_probability

CARE_SETTINGS: tuple[str, ...] = ("intake", "exam", "movement")
DEFAULT_SETTING_MIX = {"intake": 0.3, "exam": 0.4, "movement": 0.3}  # brief
ITEM_MISSING = 0.05  # an optional item (or a whole procedure) not recorded, within its setting
BMI_MISSING = 0.10
RUNNERS_ONLY = ("running_pelvic_drop_deg",)  # running analysis needs a recorded runner
_BILATERAL, _RIGHT_SIDE = BY_NAME["side"].allowed.index("bilateral"), 1
_LEFT, _RIGHT = P.ABDUCTION_FIELDS


def _setting_mix(settings: dict[str, float] | None) -> np.ndarray:
    mix = DEFAULT_SETTING_MIX if settings is None else settings
    unknown = set(mix) - set(CARE_SETTINGS)
    if unknown:
        raise ValueError(f"settings: unknown care setting(s) {sorted(unknown)}; "
                         f"expected some of {list(CARE_SETTINGS)}")
    p = np.array([float(mix.get(s, 0.0)) for s in CARE_SETTINGS])
    if not np.all(np.isfinite(p)) or (p < 0).any() or p.sum() <= 0:
        raise ValueError("settings: care-setting shares must be non-negative, not all zero")
    shares: np.ndarray = p / p.sum()
    return shares


def _draw_category(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row from per-row probabilities (n, k)."""
    u = rng.random(len(probs))[:, None]
    return np.asarray((u > np.cumsum(probs, axis=1)[:, :-1]).sum(axis=1))


def simulate(n: int, seed: int, *, control_fraction: float = 0.0,
             settings: dict[str, float] | None = None) -> pd.DataFrame:
    """Simulate ``n`` people, ``control_fraction`` of them pain-free controls.

    One row per person: ``patient_id``, ``is_control``, ``care_setting``, every record field of
    the contract with ``complaint`` (NaN for controls) in place of the ``complaints`` list (the
    raw dynamometer readings stay unrecorded: the torques are the canonical fields), the latents
    ``weak`` (a hip abductor deficit is present), ``weakness_severity`` (its log ratio to the
    person's own level, 0 when absent), ``alt_cause`` (0 none, 1 knee joint or nerve root, 2 hip
    joint), ``quadriceps_weak``, ``gluteal_tendinopathy``, ``hip_driver_true``, the observed
    label ``hip_driver`` (a response to a hip programme; NaN for controls) and ``p_true``.
    Numbers, integers and booleans are float64, NaN when not recorded; categories are
    ``pd.Categorical`` over the allowed values. ``settings`` replaces the care-setting mix
    (shares of intake/exam/movement, absent = 0). Controls follow the full research protocol
    (setting ``movement``).

    Long: one generative story in the order of its random draws; the order fixes what a
    seed produces, so it reads as one piece and is kept in one.
    """
    if n < 0 or not 0.0 <= control_fraction <= 1.0:
        raise ValueError("need n >= 0 and control_fraction within [0, 1]")
    mix = _setting_mix(settings)
    rng = np.random.default_rng(seed)
    std = rng.standard_normal

    is_control = np.zeros(n, dtype=bool)
    is_control[rng.permutation(n)[: round(n * control_fraction)]] = True
    c = np.where(is_control, P.CONTROL, rng.choice(len(COMPLAINTS), size=n, p=P.COMPLAINT_MIX))
    female = (rng.random(n) < P.FEMALE[c]).astype(float)
    adolescent = rng.random(n) < P.ADOLESCENT[c]
    adult = np.minimum(np.round(18.0 + P.ADULT_AGE_ABOVE_18_MEDIAN[c]
                                * np.exp(P.AGE_LOG_SD * std(n))), 90.0)
    age = np.where(adolescent, rng.integers(12, 18, size=n).astype(float), adult)
    activity, side = _draw_category(rng, P.ACTIVITY[c]), _draw_category(rng, P.SIDE[c])
    bmi = np.clip(np.exp(P.bmi_log_median(c, female, age) + P.BMI_LOG_SD * std(n)),
                  *bounds("bmi_kg_m2"))
    bmi_class = np.searchsorted(P.BMI_CUTS, np.log(bmi), side="right")

    w = (rng.random(n) < P.weak_probability(c, bmi_class, activity)).astype(float)
    z = std(n)
    deficit = w * (P.DEFICIT_LOG_MEAN + P.DEFICIT_LOG_SD * z)
    sev = P.severity(deficit)
    a = _draw_category(rng, P.ALT_CAUSE[c])
    q = (rng.random(n) < P.QUAD_WEAK[c]).astype(int)
    t = (rng.random(n) < P.tendinopathy_probability(c, female, age, w)).astype(int)
    h = w * (rng.random(n) < P.driver_probability(c, z, a, q))
    hi = h.astype(int)

    col: dict[str, np.ndarray] = {"age_years": age, "bmi_kg_m2": bmi}
    col["pain_nrs"] = np.where(is_control, 0.0, np.round(P.PAIN_MEAN[c] + P.PAIN_SD * std(n)))
    log_months = np.minimum(P.DURATION_LOG_MEDIAN[c] + P.DURATION_LOG_SD * std(n),
                            np.log(bounds("symptom_duration_months")[1]))
    col["symptom_duration_months"] = np.where(is_control, 0.0, np.exp(log_months))
    for name, p in P.SYMPTOMS_BY_DRIVER.items():
        col[name] = np.where(is_control, 0.0, rng.random(n) < p[hi])
    for name, pa in P.SYMPTOMS_BY_DRIVER_AND_ACTIVITY.items():
        col[name] = np.where(is_control, 0.0, rng.random(n) < pa[activity, hi])
    for name, p in P.ALT_FINDINGS.items():
        col[name] = (rng.random(n) < p[c, a]).astype(float)
    for name, p in P.ITB_TESTS.items():
        col[name] = (rng.random(n) < p[c]).astype(float)
    for name, p in P.SIGNS_BY_TENDINOPATHY.items():
        col[name] = (rng.random(n) < p[t]).astype(float)
    trend_a, trend_b = P.TRENDELENBURG
    col["trendelenburg_sign"] = (rng.random(n) < 1 / (1 + np.exp(-(trend_a + trend_b * sev)))
                                 ).astype(float)
    rate = P.RED_FLAG_ANY / max(len(RED_FLAGS), 1)
    for f in RED_FLAGS:
        col[f.name] = np.where(is_control, 0.0, rng.random(n) < rate)

    # strength: norm x BMI class x person x session error (both sides) x side error, deficit
    inhibition = np.where(is_control, 0.0, P.PAIN_INHIBITION)
    mu = (P.log_norm("hip_abduction", female, age) + P.NORM_OFFSET["hip_abduction"]
          + P.bmi_class_effect(bmi_class, female, age) + P.PERSON_SD * std(n)
          + P.ERROR_SD * np.sqrt(P.ERROR_SIDE_CORR) * std(n))
    bilateral = side == _BILATERAL
    share = np.where(bilateral, 1.0, P.CONTRALATERAL_SHARE)
    own_sd = P.ERROR_SD * np.sqrt(1.0 - P.ERROR_SIDE_CORR)
    painful = mu + deficit + inhibition + own_sd * std(n)
    other = mu + share * deficit + bilateral * inhibition + own_sd * std(n)
    on_right = side == _RIGHT_SIDE
    col[_LEFT] = np.exp(np.where(on_right, other, painful))
    col[_RIGHT] = np.exp(np.where(on_right, painful, other))
    for name, (muscle, carried, inhibit) in P.OTHER_STRENGTH.items():
        log_torque = (P.log_norm(muscle, female, age) + P.NORM_OFFSET[muscle]
                      + P.bmi_class_effect(bmi_class, female, age) + carried * deficit
                      + np.where(is_control, 0.0, inhibit) + P.OTHER_SD[name] * std(n))
        if muscle == "knee_extension":
            log_torque += q * (P.QUAD_DEFICIT_LOG_MEAN + P.QUAD_DEFICIT_LOG_SD * std(n))
        col[name] = np.exp(log_torque)

    col["foot_posture_index"] = np.clip(np.round(P.FPI_MEAN[c] + P.FPI_SD * std(n)),
                                        *bounds("foot_posture_index"))
    col["single_leg_squat_knee_fppa_deg"] = (
        P.fppa_mean(c, female, col["foot_posture_index"], sev) + P.FPPA_SD * std(n))
    for name, (base, shift, sd) in P.KINEMATICS.items():
        col[name] = base[c] + shift * sev + sd * std(n)
    step_down = _draw_category(rng, P.step_down_probabilities(c, sev))

    setting = rng.choice(len(CARE_SETTINGS), size=n, p=mix)
    setting[is_control] = CARE_SETTINGS.index("movement")
    codes = {"complaint": np.where(is_control, -1, c), "sex": (1 - female).astype(int),
             "activity_profile": activity, "side": np.where(is_control, -1, side),
             "step_down_quality": step_down}
    frame = _record_frame(rng, col, codes, setting, is_control)
    frame["weak"], frame["weakness_severity"] = w, deficit
    frame["alt_cause"], frame["quadriceps_weak"] = a.astype(float), q.astype(float)
    frame["gluteal_tendinopathy"], frame["hip_driver_true"] = t.astype(float), h
    response = rng.random(n) < P.response_probability(hi, log_months)
    frame["hip_driver"] = np.where(is_control, np.nan, response.astype(float))
    frame["p_true"] = true_probability(frame)
    return frame


def _record_frame(rng: np.random.Generator, col: dict[str, np.ndarray],
                  codes: dict[str, np.ndarray], setting: np.ndarray, is_control: np.ndarray
                  ) -> pd.DataFrame:
    """Clip to the contract, blank what the care setting and chance leave unrecorded.

    A procedure (dynamometry, the squat video) is done or not as a whole; intake items and
    single tests go missing one by one. Red-flag questions are always asked. A contract field
    the simulator does not model (e.g. the raw dynamometer inputs) is left unrecorded.
    """
    n = len(setting)
    rank = {g: i for i, g in enumerate(CARE_SETTINGS)}
    skipped: dict[str, np.ndarray] = {}
    data: dict[str, object] = {"patient_id": np.arange(1, n + 1, dtype=np.int64),
                               "is_control": is_control,
                               "care_setting": pd.Categorical.from_codes(setting, pd.Index(CARE_SETTINGS))}
    for f in generated_fields():
        if f.role == "rows":
            data["complaint"] = pd.Categorical.from_codes(codes["complaint"], pd.Index(f.allowed))
            continue
        if f.required or f.role == "red_flag":
            missing = np.zeros(n, dtype=bool)
        elif f.group == "intake":
            missing = rng.random(n) < (BMI_MISSING if f.name == "bmi_kg_m2" else ITEM_MISSING)
        else:
            key = f.procedure or f.name
            if key not in skipped:
                skipped[key] = rng.random(n) < ITEM_MISSING
            missing = skipped[key] | (setting < rank[f.group])
        if f.kind == "category":
            code = codes.get(f.name, np.full(n, -1))
            data[f.name] = pd.Categorical.from_codes(np.where(missing, -1, code), pd.Index(f.allowed))
        elif f.name in col:
            data[f.name] = np.where(missing, np.nan,
                                    np.clip(col[f.name].astype(float), *bounds(f.name)))
        else:
            data[f.name] = np.full(n, np.nan)
    frame = pd.DataFrame(data)
    runner = (frame["activity_profile"] == "runner").to_numpy()
    for name in RUNNERS_ONLY:
        frame.loc[~runner, name] = np.nan
    return frame
