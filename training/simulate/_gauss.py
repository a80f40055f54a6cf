"""Gaussian log-likelihood helpers of the exact posterior: censored at the contract's limits."""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri

_GAUSS_LEGENDRE = np.polynomial.legendre.leggauss(64)


def bern(value: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Log-likelihood of a recorded yes/no (0 when unrecorded); ``p`` is (m, k) or (k,)."""
    v = value[:, None]
    ll = np.where(v == 1.0, np.log(p), np.log1p(-p))
    return np.where(np.isnan(v), 0.0, ll)


def normal(value: np.ndarray, mean: np.ndarray, sd: float, bounds: tuple[float, float]
            ) -> np.ndarray:
    """Gaussian log-density, or the tail mass when the value sits on a limit it was clipped to;
    0 where the value is unrecorded."""
    lo, hi = bounds
    value, mean = np.broadcast_arrays(value, mean)
    z = (value - mean) / sd
    ll: np.ndarray = -0.5 * z * z - (np.log(sd) + 0.5 * np.log(2.0 * np.pi))
    with np.errstate(invalid="ignore"):
        low, high = value <= lo, value >= hi
    if low.any():
        ll[low] = log_ndtr((lo - mean[low]) / sd)
    if high.any():
        ll[high] = log_ndtr((mean[high] - hi) / sd)
    ll[np.isnan(value)] = 0.0
    return ll


def bvn_loglik(x: np.ndarray, y: np.ndarray, mx: np.ndarray, my: np.ndarray, vx: float,
                vy: float, cov: float, lo: float, hi: float) -> np.ndarray:
    """Bivariate-normal log-likelihood of (x, y) (m, 1) under means (m, k)."""
    sx, sy, r = np.sqrt(vx), np.sqrt(vy), cov / np.sqrt(vx * vy)
    zx, zy = (x - mx) / sx, (y - my) / sy
    ll: np.ndarray = (-0.5 * (zx * zx - 2 * r * zx * zy + zy * zy) / (1 - r * r)
          - np.log(2 * np.pi * sx * sy * np.sqrt(1 - r * r)))
    cx = np.where(x <= lo, -1, np.where(x >= hi, 1, 0)) + 0 * zx  # -1 low, +1 high, 0 exact
    cy = np.where(y <= lo, -1, np.where(y >= hi, 1, 0)) + 0 * zy
    odd = np.flatnonzero(((cx != 0) | (cy != 0) | np.isnan(x) | np.isnan(y))[:, 0])
    if len(odd):  # rare: a side clipped at a contract limit, or only one side recorded
        ll[odd] = _odd_pairs(zx[odd], zy[odd], cx[odd], cy[odd], sx, sy, r)
    return ll


def _odd_pairs(zx: np.ndarray, zy: np.ndarray, cx: np.ndarray, cy: np.ndarray, sx: float,
               sy: float, r: float) -> np.ndarray:
    """Pairs with a censored or unrecorded member: densities times (conditional) tail masses."""
    q = np.sqrt(1 - r * r)

    def dens(z: np.ndarray, s: float) -> np.ndarray:
        out: np.ndarray = -0.5 * z * z - np.log(s) - 0.5 * np.log(2 * np.pi)
        return out

    def tail(z: np.ndarray, cz: np.ndarray) -> np.ndarray:
        return np.asarray(log_ndtr(np.where(cz < 0, z, -z)))

    def alone(z: np.ndarray, cz: np.ndarray, s: float) -> np.ndarray:
        return np.where(cz == 0, dens(z, s), tail(z, cz))

    with np.errstate(invalid="ignore"):
        out = np.where(cy != 0, dens(zx, sx) + tail((zy - r * zx) / q, cy),
                       dens(zy, sy) + tail((zx - r * zy) / q, cx))
        both = (cx != 0) & (cy != 0) & ~np.isnan(zx) & ~np.isnan(zy)
        if both.any():
            h, k = np.where(cx < 0, zx, -zx)[both], np.where(cy < 0, zy, -zy)[both]
            out[both] = np.log(_bvn_cdf(h, k, (r * cx * cy)[both]))
        out = np.where(np.isnan(zx), np.where(np.isnan(zy), 0.0, alone(zy, cy, sy)), out)
        return np.where(np.isnan(zy) & ~np.isnan(zx), alone(zx, cx, sx), out)


def _bvn_cdf(h: np.ndarray, k: np.ndarray, r: np.ndarray) -> np.ndarray:
    """P(U <= h, V <= k) for standard normals with correlation r: the integral over
    t = Phi(u) in (0, Phi(h)) of Phi((k - r u) / sqrt(1 - r^2)), by 64-point Gauss-Legendre."""
    nodes, weights = _GAUSS_LEGENDRE
    upper = ndtr(h)
    u = ndtri(np.clip(upper[:, None] * (nodes + 1.0) / 2.0, 1e-300, 1.0))
    inner = ndtr((k[:, None] - r[:, None] * u) / np.sqrt(1 - r[:, None] ** 2))
    mass: np.ndarray = np.maximum(upper * (inner * weights).sum(axis=1) / 2.0, 1e-300)
    return mass
