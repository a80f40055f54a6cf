"""The exact posterior: P(observed label = 1 | the recorded columns of a row).

Missingness is MCAR given the care setting (running analysis needs a recorded runner), so an
unrecorded finding drops out of the likelihood. An unrecorded activity, side or BMI class is
summed out with its prior (each value's evidence weighted by P(value | complaint, sex, age));
an unrecorded foot posture index is summed out inside the knee-FPPA term; values clipped at the
contract's limits count as censored. The latent severity of a deficit is integrated by
Gauss-Hermite quadrature (``NODES`` points: every finding is smooth in it), the discrete
latents (W, A, Q, T, H) are enumerated. Symptom duration changes only the chance of response,
so it enters at the end (integrated over its prior when unrecorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import ndtr

from cds.features import BY_NAME

from . import priors as P
from ._gauss import bern, bvn_loglik, normal
from .fields import bounds, generated_fields

NODES = 24  # within 1e-6 of 96 nodes (tests/test_simulate.py)
_BILATERAL, _RIGHT_SIDE = BY_NAME["side"].allowed.index("bilateral"), 1
_LEFT, _RIGHT = P.ABDUCTION_FIELDS
_COVARIATES = ("activity_profile", "side", "bmi_class")


@dataclass(frozen=True)
class _Grid:
    """Weakness states: none, then the Gauss-Hermite nodes of the severity (J = nodes + 1)."""

    z: np.ndarray  # (J,): -inf for no deficit
    log_weight: np.ndarray  # (J - 1,): log quadrature weights, summing to 1
    deficit: np.ndarray  # (J,): log ratio to the person's own level, 0 for no deficit
    severity: np.ndarray  # (J,)
    weak: np.ndarray  # (J,): W of each state


@lru_cache(maxsize=4)
def _grid(nodes: int) -> _Grid:
    z, omega = np.polynomial.hermite_e.hermegauss(nodes)
    deficit = np.concatenate([[0.0], P.DEFICIT_LOG_MEAN + P.DEFICIT_LOG_SD * z])
    return _Grid(np.concatenate([[-np.inf], z]), np.log(omega / omega.sum()), deficit,
                 P.severity(deficit), np.concatenate([[0], np.ones(nodes, dtype=int)]))


def true_probability(df: pd.DataFrame, *, chunk: int = 20_000, nodes: int = NODES
                     ) -> np.ndarray:
    """P(observed label = 1 | the recorded columns of each row), exactly (to quadrature).

    Columns absent from ``df`` count as unrecorded. Rows without complaint, sex or age
    (controls) get NaN. ``nodes``: Gauss-Hermite points over the deficit's severity.
    """
    grid = _grid(nodes)
    x: dict[str, np.ndarray] = {}
    for f in generated_fields():
        name = f.row_column or f.name
        if name not in df.columns:
            x[name] = np.full(len(df), np.nan)
        elif f.kind == "category":
            cat = pd.Categorical(df[name], categories=list(f.allowed)).codes
            x[name] = np.where(cat < 0, np.nan, cat).astype(float)
        else:
            x[name] = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x["bmi_class"] = np.where(np.isnan(x["bmi_kg_m2"]), np.nan, np.searchsorted(
            P.BMI_CUTS, np.log(np.nan_to_num(x["bmi_kg_m2"], nan=1.0)), side="right"))
    out = np.full(len(df), np.nan)
    ok = ~(np.isnan(x["complaint"]) | np.isnan(x["sex"]) | np.isnan(x["age_years"]))
    rows = np.flatnonzero(ok)
    for start in range(0, len(rows), chunk):
        idx = rows[start: start + chunk]
        part = {k: v[idx] for k, v in x.items()}
        p_driver = _summed_out(part, grid)[1]
        out[idx] = _label_probability(part, p_driver)
    return out


def _label_probability(x: dict[str, np.ndarray], p_driver: np.ndarray) -> np.ndarray:
    """P(response) = sum over H of P(H | x) P(response | H, duration)."""
    c = x["complaint"].astype(int)
    months = x["symptom_duration_months"]
    known = months > 0
    log_months = np.log(np.where(known, months, 1.0))
    r = np.stack([P.response_probability(np.full(len(c), h), log_months) for h in (0, 1)], 1)
    # unrecorded: the expectation over the complaint's duration prior (clipped at the maximum)
    z, omega = np.polynomial.hermite_e.hermegauss(48)
    top = np.log(bounds("symptom_duration_months")[1])
    grid = np.minimum(P.DURATION_LOG_MEDIAN[c][:, None] + P.DURATION_LOG_SD * z[None, :], top)
    expected = np.stack([(P.response_probability(np.full(grid.shape, h), grid) * omega).sum(1)
                         / omega.sum() for h in (0, 1)], 1)
    r = np.where(known[:, None], r, expected)
    return np.asarray(p_driver * r[:, 1] + (1 - p_driver) * r[:, 0])


def _summed_out(x: dict[str, np.ndarray], grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """(log evidence, P(H=1 | x)), summing out each unrecorded covariate with its prior."""
    for name in _COVARIATES:
        missing = np.isnan(x[name])
        if not missing.any():
            continue
        log_ev, p_h = np.empty(len(missing)), np.empty(len(missing))
        known = np.flatnonzero(~missing)
        if len(known):
            log_ev[known], p_h[known] = _summed_out({k: v[known] for k, v in x.items()},
                                                      grid)
        rows = np.flatnonzero(missing)
        sub = {k: v[rows] for k, v in x.items()}
        prior = _covariate_prior(name, sub)
        parts = []
        for value in range(prior.shape[1]):
            trial = dict(sub, **{name: np.full(len(rows), float(value))})
            ev, p = _summed_out(trial, grid)
            with np.errstate(divide="ignore"):
                parts.append((np.log(prior[:, value]) + ev, p))
        evs = np.column_stack([e for e, _ in parts])
        top = evs.max(axis=1, keepdims=True)
        weight = np.exp(evs - top)
        log_ev[rows] = np.log(weight.sum(axis=1)) + top[:, 0]
        p_h[rows] = (weight * np.column_stack([p for _, p in parts])).sum(1) / weight.sum(1)
        return log_ev, p_h
    return _core(x, grid)


def _covariate_prior(name: str, x: dict[str, np.ndarray]) -> np.ndarray:
    c = x["complaint"].astype(int)
    if name == "activity_profile":
        return np.asarray(P.ACTIVITY[c])
    if name == "side":
        return np.asarray(P.SIDE[c])
    female = (x["sex"] == 0).astype(float)
    return P.bmi_class_probability(c, female, x["age_years"])


def _core(x: dict[str, np.ndarray], grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """(log evidence, P(H=1 | x)) for rows with every covariate known."""
    m = len(x["complaint"])
    c = x["complaint"].astype(int)
    female = (x["sex"] == BY_NAME["sex"].allowed.index("female")).astype(float)
    age, o = x["age_years"], x["bmi_class"].astype(int)
    act, side = x["activity_profile"].astype(int), x["side"].astype(int)

    pw = P.weak_probability(c, o, act)
    with np.errstate(divide="ignore"):
        ll_w = np.column_stack([np.log1p(-pw), np.log(pw)[:, None] + grid.log_weight[None, :]])
    ll_w += _strength_loglik(x, c, female, age, o, side, grid.deficit)
    ll_w += _kinematics_loglik(x, c, female, grid.severity)
    trend_a, trend_b = P.TRENDELENBURG
    ll_w += bern(x["trendelenburg_sign"], 1 / (1 + np.exp(-(trend_a + trend_b * grid.severity))))
    step = x["step_down_quality"]
    probs = P.step_down_probabilities(c[:, None], grid.severity[None, :])  # (m, J, 3)
    picked = np.take_along_axis(probs, np.nan_to_num(step).astype(int)[:, None, None]
                                .repeat(len(grid.severity), 1), 2)[:, :, 0]
    ll_w += np.where(np.isnan(step)[:, None], 0.0, np.log(picked))
    ll_w += _tendinopathy_loglik(x, c, female, age)[:, grid.weak]

    ll_q = np.log(np.column_stack([1 - P.QUAD_WEAK[c], P.QUAD_WEAK[c]]))
    ll_q += _knee_extension_loglik(x, c, female, age, o)
    ll_a = np.log(P.ALT_CAUSE[c] + 1e-300)
    for name, p in P.ALT_FINDINGS.items():
        ll_a += bern(x[name], p[c])
    ll_h = np.zeros((m, 2))
    for name, p in P.SYMPTOMS_BY_DRIVER.items():
        ll_h += bern(x[name], p)
    for name, pa in P.SYMPTOMS_BY_DRIVER_AND_ACTIVITY.items():
        ll_h += bern(x[name], pa[act])

    tops = [ll.max(axis=1, keepdims=True) for ll in (ll_w, ll_a, ll_q, ll_h)]
    e_w, e_a, e_q, e_h = (np.exp(ll - t) for ll, t in zip((ll_w, ll_a, ll_q, ll_h), tops,
                                                          strict=True))
    p_h = P.driver_probability(c[:, None, None, None], grid.z[None, :, None, None],
                               np.arange(3)[None, None, :, None], np.arange(2)[None, None, None, :])
    p_h[:, 0] = 0.0
    driver = np.einsum("mj,ma,mq,mjaq->m", e_w, e_a, e_q, p_h) * e_h[:, 1]
    total = driver + np.einsum("mj,ma,mq,mjaq->m", e_w, e_a, e_q, 1 - p_h) * e_h[:, 0]
    log_ev = np.log(total) + sum(t[:, 0] for t in tops)
    return np.asarray(log_ev), np.asarray(driver / total)


def _log_bounds(name: str) -> tuple[float, float]:
    lo, hi = bounds(name)
    return (float(np.log(lo)) if lo > 0 else -np.inf, float(np.log(hi)))


def _log(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.log(values))


def _strength_loglik(x: dict[str, np.ndarray], c: np.ndarray, female: np.ndarray,
                     age: np.ndarray, o: np.ndarray, side: np.ndarray, deficit: np.ndarray
                     ) -> np.ndarray:
    """Hip abduction (both sides) and the painful side's ER and extension torque: (m, J)."""
    base = (P.log_norm("hip_abduction", female, age) + P.NORM_OFFSET["hip_abduction"]
            + P.bmi_class_effect(o, female, age) + P.PAIN_INHIBITION)[:, None]
    bilateral = (side == _BILATERAL)[:, None]
    share = np.where(bilateral, 1.0, P.CONTRALATERAL_SHARE)
    m_pain = base + deficit[None, :]
    m_other = base - P.PAIN_INHIBITION * ~bilateral + share * deficit[None, :]
    right = (side == _RIGHT_SIDE)[:, None]
    var = P.PERSON_SD**2 + P.ERROR_SD**2
    cov = P.PERSON_SD**2 + P.ERROR_SIDE_CORR * P.ERROR_SD**2
    lo, hi = _log_bounds(_LEFT)
    out = np.zeros((len(c), len(deficit)))
    rows = np.flatnonzero(~(np.isnan(x[_LEFT]) & np.isnan(x[_RIGHT])))
    if len(rows):
        left, rgt = _log(x[_LEFT][rows])[:, None], _log(x[_RIGHT][rows])[:, None]
        mean_left = np.where(right[rows], m_other[rows], m_pain[rows])
        mean_right = np.where(right[rows], m_pain[rows], m_other[rows])
        out[rows] = bvn_loglik(left, rgt, mean_left, mean_right, var, var, cov, lo, hi)
    for name, (muscle, carried, inhibit) in P.OTHER_STRENGTH.items():
        if muscle == "knee_extension":
            continue
        rows = np.flatnonzero(~np.isnan(x[name]))
        if len(rows):
            mean = (P.log_norm(muscle, female[rows], age[rows]) + P.NORM_OFFSET[muscle]
                    + P.bmi_class_effect(o[rows], female[rows], age[rows]) + inhibit)[:, None]
            mean = mean + carried * deficit
            out[rows] += normal(_log(x[name][rows])[:, None], mean, P.OTHER_SD[name],
                                _log_bounds(name))
    return out


def _knee_extension_loglik(x: dict[str, np.ndarray], c: np.ndarray, female: np.ndarray,
                           age: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Knee extension torque given quadriceps weakness Q: (m, 2)."""
    name = "knee_extension_nm_per_kg"
    muscle, _, inhibit = P.OTHER_STRENGTH[name]
    out = np.zeros((len(c), 2))
    rows = np.flatnonzero(~np.isnan(x[name]))
    if len(rows):
        value = _log(x[name][rows])
        base = (P.log_norm(muscle, female[rows], age[rows]) + P.NORM_OFFSET[muscle]
                + P.bmi_class_effect(o[rows], female[rows], age[rows]) + inhibit)
        sd = P.OTHER_SD[name]
        out[rows, 0] = normal(value, base, sd, _log_bounds(name))
        out[rows, 1] = normal(value, base + P.QUAD_DEFICIT_LOG_MEAN,
                              float(np.hypot(sd, P.QUAD_DEFICIT_LOG_SD)), _log_bounds(name))
    return out


def _kinematics_loglik(x: dict[str, np.ndarray], c: np.ndarray, female: np.ndarray,
                       severity: np.ndarray) -> np.ndarray:
    """Squat and running angles given the deficit state: (m, J)."""
    out = np.zeros((len(c), len(severity)))
    for name, (base, shift, sd) in P.KINEMATICS.items():
        rows = np.flatnonzero(~np.isnan(x[name]))
        if len(rows):
            mean = base[c[rows]][:, None] + shift * severity[None, :]
            out[rows] += normal(x[name][rows][:, None], mean, sd, bounds(name))
    name = "single_leg_squat_knee_fppa_deg"
    rows = np.flatnonzero(~np.isnan(x[name]))
    if not len(rows):
        return out
    fpi, value, cr, fr = x["foot_posture_index"][rows], x[name][rows], c[rows], female[rows]
    sev = severity[None, :]
    part = normal(value[:, None], P.fppa_mean(cr[:, None], fr[:, None], fpi[:, None], sev),
                  P.FPPA_SD, bounds(name))
    lost = np.flatnonzero(np.isnan(fpi))
    if len(lost):  # P(FPPA | W) = sum over FPI points k of P(k | complaint) P(FPPA | k, W)
        points = np.arange(-12.0, 13.0)
        edges = np.concatenate([[-np.inf], points[:-1] + 0.5, [np.inf]])
        p_fpi = np.diff(ndtr((edges[None, :] - P.FPI_MEAN[cr[lost]][:, None]) / P.FPI_SD), axis=1)
        means = P.fppa_mean(cr[lost, None, None], fr[lost, None, None], points[None, :, None],
                            sev[None, :, :])
        ll = normal(value[lost, None, None], means, P.FPPA_SD, bounds(name))  # (r, 25, J)
        top = ll.max(axis=1)
        part[lost] = np.log((p_fpi[:, :, None] * np.exp(ll - top[:, None, :])).sum(1)) + top
    out[rows] += part
    return out


def _tendinopathy_loglik(x: dict[str, np.ndarray], c: np.ndarray, female: np.ndarray,
                         age: np.ndarray) -> np.ndarray:
    """Gluteal tendinopathy signs given W, T summed out: (m, 2)."""
    by_t = np.zeros((len(c), 2))
    for name, p in P.SIGNS_BY_TENDINOPATHY.items():
        by_t += bern(x[name], p)
    top = by_t.max(axis=1, keepdims=True)
    e_t = np.exp(by_t - top)
    out = np.empty((len(c), 2))
    for w in (0, 1):
        pt = P.tendinopathy_probability(c, female, age, np.full(len(c), float(w)))
        out[:, w] = np.log((1 - pt) * e_t[:, 0] + pt * e_t[:, 1]) + top[:, 0]
    return out
