"""The simulated world against the published one: one test per published case-control row.

Simulated patients (every finding recorded) are compared with simulated pain-free controls the
way each study compared its groups; the test prints simulated vs published and asserts the
simulated value lies within the published uncertainty. Where an abstract gives a 95 % CI it is
used as published; where it gives means and SDs the 95 % CI of the difference is computed from
them and the group sizes; where it gives only a percentage deficit (strength studies), the CI
is approximated from the group sizes and a between-person CV of 25 % (CLINICAL.md priors,
20-30 %: de Sousa 2019; Allison 2016), and the test says so. Strength is compared as a percent
of the sex- and age-specific norm (:mod:`cds.norms`), so that the age mix of a simulated
complaint does not masquerade as a deficit (the studies matched their controls by age and sex).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from cds.norms import NORMS
from training.simulate import simulate
from training.simulate.priors import log_norm

LEFT, RIGHT = "hip_abduction_left_nm_per_kg", "hip_abduction_right_nm_per_kg"
CV = 0.25  # between-person CV used where a study reports only a percentage deficit


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    """Half patients, half controls, everyone examined with the full protocol."""
    frame = simulate(160_000, 20260412, control_fraction=0.5, settings={"movement": 1.0})
    female = (frame["sex"] == "female").to_numpy(float)
    age = frame["age_years"].to_numpy(float)
    painful_right = (frame["side"] == "right").to_numpy()
    painful = np.where(painful_right, frame[RIGHT], frame[LEFT])  # controls: the left side
    other = np.where(painful_right, frame[LEFT], frame[RIGHT])
    frame["abduction"] = painful
    frame["abduction_other"] = other
    frame["abduction_pct"] = 100 * painful / np.exp(log_norm("hip_abduction", female, age))
    for field, muscle in (("hip_external_rotation_nm_per_kg", "hip_external_rotation"),
                          ("hip_extension_nm_per_kg", "hip_extension"),
                          ("knee_extension_nm_per_kg", "knee_extension")):
        frame[muscle + "_pct"] = 100 * frame[field] / np.exp(log_norm(muscle, female, age))
    return frame


def cases(world: pd.DataFrame, complaint: str) -> pd.DataFrame:
    return world[world["complaint"] == complaint]


def controls(world: pd.DataFrame) -> pd.DataFrame:
    return world[world["is_control"]]


def deficit_pct(patients: pd.Series, healthy: pd.Series) -> float:
    """How much lower the patients' mean is than the controls', in percent."""
    return float(100 * (1 - patients.mean() / healthy.mean()))


def smd(patients: pd.Series, healthy: pd.Series) -> float:
    """Controls minus patients over the pooled SD (positive = patients weaker / lower)."""
    pooled = np.sqrt((patients.var() + healthy.var()) / 2)
    return float((healthy.mean() - patients.mean()) / pooled)


def mean_difference(patients: pd.Series, healthy: pd.Series) -> float:
    return float(patients.mean() - healthy.mean())


def ci_from_means(sd1: float, n1: int, sd2: float, n2: int, diff: float) -> tuple[float, float]:
    half = 1.96 * np.sqrt(sd1**2 / n1 + sd2**2 / n2)
    return diff - half, diff + half


def ci_from_deficit(pct: float, n1: int, n2: int) -> tuple[float, float]:
    half = 1.96 * 100 * CV * np.sqrt(1 / n1 + 1 / n2)
    return pct - half, pct + half


@dataclass(frozen=True)
class Row:
    source: str
    quantity: str
    published: float
    low: float
    high: float
    simulated: Callable[[pd.DataFrame], float]
    uncertainty: str


def _female_pfp_12_21(w: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    keep = w[(w["sex"] == "female") & w["age_years"].between(12, 21)]
    return cases(keep, "pfp"), controls(keep)


def _sedentary_women_unilateral(w: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    keep = w[(w["sex"] == "female") & w["age_years"].between(15, 40)
             & (w["activity_profile"] == "general")]
    pfp = cases(keep, "pfp")
    return pfp[pfp["side"].isin(["left", "right"])], controls(keep)


def _itbs_runners(w: pd.DataFrame, sex: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    keep = w[(w["sex"] == sex) & (w["activity_profile"] == "runner")]
    itbs = cases(keep, "itbs")
    return itbs[itbs["side"].isin(["left", "right"])], controls(keep)


def _running_or(w: pd.DataFrame) -> float:
    runners = w.dropna(subset=["running_pelvic_drop_deg"])
    runners = runners[runners["is_control"] | runners["complaint"].isin(["pfp", "itbs"])]
    fit = LogisticRegression(C=1e6).fit(runners[["running_pelvic_drop_deg"]],
                                        ~runners["is_control"])
    return float(np.exp(fit.coef_[0, 0]))


ROWS = [
    # ---------------------------------------------------------------- PFP: hip strength
    Row("Nakagawa 2012 (JOSPT 42:491; n 40 PFP / 40 controls)",
        "PFP hip abduction strength deficit vs controls, %", 18, *ci_from_deficit(18, 40, 40),
        lambda w: deficit_pct(cases(w, "pfp")["abduction_pct"], controls(w)["abduction_pct"]),
        "CI approximated from n and CV 25 %"),
    Row("Ireland 2003 (JOSPT 33:671; females 12-21 y, n 15 / 15)",
        "PFP hip abduction strength deficit vs controls, %", 26, *ci_from_deficit(26, 15, 15),
        lambda w: deficit_pct(*(g["abduction_pct"] for g in _female_pfp_12_21(w))),
        "CI approximated from n and CV 25 %"),
    Row("Nakagawa 2012 (JOSPT 42:491; n 40 / 40)",
        "PFP hip external rotation strength deficit vs controls, %", 17,
        *ci_from_deficit(17, 40, 40),
        lambda w: deficit_pct(cases(w, "pfp")["hip_external_rotation_pct"],
                              controls(w)["hip_external_rotation_pct"]),
        "CI approximated from n and CV 25 %"),
    Row("Ireland 2003 (JOSPT 33:671; females 12-21 y, n 15 / 15)",
        "PFP hip external rotation strength deficit vs controls, %", 36,
        *ci_from_deficit(36, 15, 15),
        lambda w: deficit_pct(*(g["hip_external_rotation_pct"] for g in _female_pfp_12_21(w))),
        "CI approximated from n and CV 25 %"),
    Row("Magalhaes 2010 (JOSPT 40:641; sedentary women 15-40 y, 21 unilateral PFP / 50)",
        "PFP injured side vs controls, hip abduction deficit % (15-20 % reported)", 17.5,
        *ci_from_deficit(17.5, 21, 50),
        lambda w: deficit_pct(*(g["abduction_pct"] for g in _sedentary_women_unilateral(w))),
        "CI approximated from n and CV 25 %"),
    Row("Magalhaes 2010 (21 unilateral PFP)",
        "PFP injured vs uninjured side, hip abduction deficit %", 20,
        20 - 1.96 * 12 / np.sqrt(21), 20 + 1.96 * 12 / np.sqrt(21),
        lambda w: float(100 * (1 - _sedentary_women_unilateral(w)[0]["abduction"].mean()
                               / _sedentary_women_unilateral(w)[0]["abduction_other"].mean())),
        "paired CI approximated from n 21 and a side-to-side SD of 12 %"),
    Row("Lankhorst 2012 (BJSM, online 2012; pooled knee extension peak torque)",
        "PFP knee extension torque vs controls, N·m (at 65 kg body mass)", -37.47, -71.75, -3.20,
        lambda w: float(65 * np.exp(log_norm(
            "knee_extension", (cases(w, "pfp")["sex"] == "female").to_numpy(float),
            cases(w, "pfp")["age_years"].to_numpy(float))).mean()
            * (cases(w, "pfp")["knee_extension_pct"].mean()
               - controls(w)["knee_extension_pct"].mean()) / 100),
        "published 95 % CI; torque per kg times 65 kg (the order of the pooled samples)"),
    # ---------------------------------------------------------------- ITBS runners by sex
    Row("Fredericson 2000 (Clin J Sport Med 10:169; female runners, 7.82 vs 10.19 %BW·h)",
        "ITBS injured side vs control runners, deficit %, women", 23.3,
        *ci_from_deficit(23.3, 14, 15),
        lambda w: deficit_pct(*(g["abduction_pct"] for g in _itbs_runners(w, "female"))),
        "CI approximated from n (14 injured) and CV 25 %"),
    Row("Fredericson 2000 (male runners, 6.86 vs 9.73 %BW·h)",
        "ITBS injured side vs control runners, deficit %, men", 29.5,
        *ci_from_deficit(29.5, 10, 15),
        lambda w: deficit_pct(*(g["abduction_pct"] for g in _itbs_runners(w, "male"))),
        "CI approximated from n (10 injured) and CV 25 %"),
    Row("Fredericson 2000 (7.82 vs 9.82; 6.86 vs 8.62 %BW·h, both sexes 20 %)",
        "ITBS injured vs uninjured side, deficit %", 20.3, 20.3 - 1.96 * 12 / np.sqrt(24),
        20.3 + 1.96 * 12 / np.sqrt(24),
        lambda w: float(100 * (1 - (_itbs_runners(w, "female")[0]["abduction"].mean()
                                    + _itbs_runners(w, "male")[0]["abduction"].mean())
                               / (_itbs_runners(w, "female")[0]["abduction_other"].mean()
                                  + _itbs_runners(w, "male")[0]["abduction_other"].mean()))),
        "paired CI approximated from n 24 and a side-to-side SD of 12 %"),
    # ---------------------------------------------------------------- CLBP
    Row("de Sousa 2019 (J Musculoskelet Neuronal Interact; meta-analysis, 5 studies)",
        "LBP hip abductor strength, SMD vs controls", 0.70, 0.49, 0.90,
        lambda w: smd(cases(w, "lbp")["abduction_pct"], controls(w)["abduction_pct"]),
        "published 95 % CI"),
    Row("de Sousa 2019 (meta-analysis, 2 studies)",
        "LBP hip extensor strength, SMD vs controls", 0.93, 0.62, 1.23,
        lambda w: smd(cases(w, "lbp")["hip_extension_pct"], controls(w)["hip_extension_pct"]),
        "published 95 % CI"),
    Row("de Sousa 2019 (meta-analysis, 3 studies)",
        "LBP knee extensor strength, N·m/kg lower than controls", 0.31, 0.10, 0.50,
        lambda w: float(np.exp(log_norm("knee_extension",
                                         (cases(w, "lbp")["sex"] == "female").to_numpy(float),
                                         cases(w, "lbp")["age_years"].to_numpy(float))).mean()
                        * (controls(w)["knee_extension_pct"].mean()
                           - cases(w, "lbp")["knee_extension_pct"].mean()) / 100),
        "published 95 % CI"),
    # ---------------------------------------------------------------- PFP single-leg squat
    Row("Nakagawa 2012 (9.3 +/- 5.3 vs 6.7 +/- 3.0; n 40 / 40)",
        "PFP squat ipsilateral trunk lean, mean difference °", 2.6,
        *ci_from_means(5.3, 40, 3.0, 40, 2.6),
        lambda w: mean_difference(cases(w, "pfp")["single_leg_squat_trunk_lean_deg"],
                                  controls(w)["single_leg_squat_trunk_lean_deg"]),
        "CI from the published means and SDs"),
    Row("Nakagawa 2012 (10.3 +/- 4.7 vs 7.4 +/- 3.8)",
        "PFP squat contralateral pelvic drop, mean difference °", 2.9,
        *ci_from_means(4.7, 40, 3.8, 40, 2.9),
        lambda w: mean_difference(cases(w, "pfp")["single_leg_squat_pelvic_drop_deg"],
                                  controls(w)["single_leg_squat_pelvic_drop_deg"]),
        "CI from the published means and SDs"),
    Row("Nakagawa 2012 (14.8 +/- 7.8 vs 10.8 +/- 5.6)",
        "PFP squat hip adduction, mean difference °", 4.0,
        *ci_from_means(7.8, 40, 5.6, 40, 4.0),
        lambda w: mean_difference(cases(w, "pfp")["single_leg_squat_hip_adduction_deg"],
                                  controls(w)["single_leg_squat_hip_adduction_deg"]),
        "CI from the published means and SDs"),
    Row("Nakagawa 2012 (controls 10.8 +/- 5.6, n 40)",
        "healthy squat hip adduction, mean °", 10.8, *ci_from_means(5.6, 40, 0.0, 1, 10.8),
        lambda w: float(controls(w)["single_leg_squat_hip_adduction_deg"].mean()),
        "CI of the control mean"),
    Row("Herrington 2014 (16.8 +/- 5.4, n 12, vs 8.4 +/- 5.1, n 30)",
        "PFP squat knee FPPA, mean difference °", 8.4, *ci_from_means(5.4, 12, 5.1, 30, 8.4),
        lambda w: mean_difference(cases(w, "pfp")["single_leg_squat_knee_fppa_deg"],
                                  controls(w)["single_leg_squat_knee_fppa_deg"]),
        "CI from the published means and SDs"),
    Row("Herrington 2014 (controls 8.4 +/- 5.1, n 30)",
        "healthy squat knee FPPA, mean °", 8.4, *ci_from_means(5.1, 30, 0.0, 1, 8.4),
        lambda w: float(controls(w)["single_leg_squat_knee_fppa_deg"].mean()),
        "CI of the control mean"),
    # ---------------------------------------------------------------- running
    Row("Bramah 2018 (Am J Sports Med 46:3023; 72 injured / 36 healthy runners)",
        "running contralateral pelvic drop, odds ratio of injury per degree", 1.8, 1.5, 2.1,
        _running_or,
        "abstract gives 1.8 (+80 % per degree) without a CI; CLINICAL.md range 1.5-2.1"),
]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.source.split(' (')[0]}: {r.quantity}"
                                           for r in ROWS])
def test_simulated_case_control_row_within_published_uncertainty(world: pd.DataFrame,
                                                                  row: Row) -> None:
    value = row.simulated(world)
    print(f"\n{row.source}\n  {row.quantity}: simulated {value:.2f}, published "
          f"{row.published:g} ({row.low:.2f} to {row.high:.2f}; {row.uncertainty})")
    assert row.low <= value <= row.high


def test_cooper_2016_lbp_weaker_than_controls_and_than_the_other_side(world: pd.DataFrame
                                                                       ) -> None:
    """Cooper 2016 (Eur Spine J 25:1258, 150 CLBP / 75 controls): gluteus medius weaker than
    controls and than the unaffected side; Trendelenburg sign more prevalent (p < 0.001; the
    abstract gives no effect sizes, so the directions are the published row)."""
    lbp = cases(world, "lbp")
    unilateral = lbp[lbp["side"].isin(["left", "right"])]
    weak_share = (lbp["abduction_pct"] < 80).mean(), (controls(world)["abduction_pct"] < 80).mean()
    trendelenburg = lbp["trendelenburg_sign"].mean(), controls(world)["trendelenburg_sign"].mean()
    print(f"\nCooper 2016: below 80 % of norm {weak_share[0]:.2f} LBP vs {weak_share[1]:.2f} "
          f"controls; affected/other side {unilateral['abduction'].mean():.2f}/"
          f"{unilateral['abduction_other'].mean():.2f} N·m/kg; Trendelenburg "
          f"{trendelenburg[0]:.2f} vs {trendelenburg[1]:.2f}")
    assert weak_share[0] > weak_share[1] + 0.1
    assert unilateral["abduction"].mean() < unilateral["abduction_other"].mean()
    assert trendelenburg[0] > trendelenburg[1]


AGE_BANDS = [(12, 17), (18, 39), (40, 59), (60, 79)]


@pytest.mark.parametrize("muscle, field", [
    ("hip_abduction", LEFT), ("hip_external_rotation", "hip_external_rotation_nm_per_kg"),
    ("hip_extension", "hip_extension_nm_per_kg"), ("knee_extension", "knee_extension_nm_per_kg")])
@pytest.mark.parametrize("sex", ["female", "male"])
@pytest.mark.parametrize("band", AGE_BANDS, ids=[f"{a}-{b}y" for a, b in AGE_BANDS])
def test_controls_reproduce_the_norm_table(world: pd.DataFrame, muscle: str, field: str,
                                           sex: str, band: tuple[int, int]) -> None:
    """cds.norms: median and 10th-90th percentile of pain-free people, by sex and age; the
    simulated controls' torque divided by the norm of their own age has median ~1 and the
    spread of the table's log-normal SD."""
    group = controls(world)
    group = group[(group["sex"] == sex) & group["age_years"].between(*band)]
    female = np.full(len(group), float(sex == "female"))
    ratio = (group[field] / np.exp(log_norm(muscle, female, group["age_years"].to_numpy(float))))
    ratio = ratio.dropna()
    p10, p50, p90 = np.percentile(ratio, [10, 50, 90])
    spread = np.exp(1.2816 * NORMS[muscle].log_sd)
    print(f"\n{muscle} {sex} {band}: n {len(ratio)}, median {p50:.3f} of the norm, "
          f"10th-90th {p10:.2f}-{p90:.2f} (table {1 / spread:.2f}-{spread:.2f})")
    assert abs(p50 - 1) <= 0.05
    assert abs(p10 - 1 / spread) <= 0.1 * (spread - 1 / spread)
    assert abs(p90 - spread) <= 0.1 * (spread - 1 / spread)
