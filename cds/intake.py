"""Validated patient record (or a training frame) -> model rows, one per presenting complaint.

One encoding for serving and training: categories become their position in the contract's
``allowed`` tuple, booleans 1.0/0.0, anything not recorded NaN (LightGBM routes missing values
natively). Derived columns are computed here and only here:

* a dynamometer force (N or kgf) becomes torque per kilogram with the lever arm and body mass
  (``torque = force x lever arm / body mass``), unless the torque itself was recorded;
* ``hip_abduction_pct_of_norm``: the painful side's torque (the weaker side when pain is
  bilateral or the side is unknown) as a percentage of the sex- and age-specific norm of
  :mod:`cds.norms`, for the test position recorded (supine, belt-fixed when not recorded);
* ``hip_abduction_asymmetry_pct``: its deficit against the other side.

A finding that does not apply to a row's complaint or to the patient's activity profile
(``complaints`` / ``profiles`` in the contract: a knee effusion for low back pain, running
analysis for a cyclist) is set aside as not recorded, for training and serving alike: the model
only ever learns a finding where it applies (:func:`cds.safety.not_applicable` tells the
clinician).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from . import norms
from .features import BY_NAME, COMPLAINTS, MODEL_COLUMNS, PROFILES, ROWS, Feature, column_feature

if TYPE_CHECKING:
    import pandas as pd

_ROW_COLUMN = ROWS.row_column or "complaint"
_LEFT, _RIGHT = "hip_abduction_left_nm_per_kg", "hip_abduction_right_nm_per_kg"
_PROTOCOL, _LEVER, _MASS = "hip_abduction_protocol", "hip_abduction_lever_arm_m", "body_mass_kg"
_SIDES = BY_NAME["side"].allowed
KGF_TO_N = 9.80665
"""Standard gravity: one kilogram-force in newtons (CGPM 1901)."""
_CODES: dict[str, dict[str, float]] = {
    f.name: {v: float(i) for i, v in enumerate(f.allowed)}
    for f in BY_NAME.values() if f.kind == "category"
}
_FORCES: dict[str, list[tuple[str, float]]] = {}  # torque field -> [(force field, to newtons)]
for _f in BY_NAME.values():
    if _f.converts_to is not None:
        _FORCES.setdefault(_f.converts_to, []).append(
            (_f.name, 1.0 if _f.unit == "N" else KGF_TO_N))

_RECORDED: dict[str, Feature] = {
    f.name: f for f in BY_NAME.values() if f.role in ("model", "input")}
_RAW_INPUTS: tuple[str, ...] = (
    _LEFT, _RIGHT, "side", "sex", "age_years", _PROTOCOL, _LEVER, _MASS,
    *(name for pairs in _FORCES.values() for name, _ in pairs))


def _applicability() -> list[tuple[int, np.ndarray, np.ndarray | None]]:
    """(model column, complaint codes it applies to, profile codes or None) of each restricted
    column; a derived column follows its inputs' restriction only if declared on itself."""
    out = []
    for j, col in enumerate(MODEL_COLUMNS):
        f = column_feature(col)
        if f.role == "rows" or not f.restricted:
            continue
        complaints = np.array([COMPLAINTS.index(c) for c in f.complaints], dtype=float)
        profiles = (None if f.profiles is None
                    else np.array([PROFILES.index(p) for p in f.profiles], dtype=float))
        out.append((j, complaints, profiles))
    return out


_APPLICABILITY = _applicability()


def encode_value(f: Feature, value: Any) -> float:
    """One recorded value as the model sees it (NaN when not recorded)."""
    if value is None:
        return np.nan
    if f.kind == "category":
        return _CODES[f.name][value]
    return float(value)


def torque_from_force(force: np.ndarray, to_newtons: float, lever_arm_m: np.ndarray,
                      body_mass_kg: np.ndarray) -> np.ndarray:
    """Dynamometer force -> torque per kilogram of body mass (N·m/kg); NaN if any is missing."""
    torque: np.ndarray = force * to_newtons * lever_arm_m / body_mass_kg
    return torque


def _torques(raw: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each side's torque: as recorded, else from its dynamometer force."""
    out = []
    for side in (_LEFT, _RIGHT):
        torque = raw[side]
        for name, to_newtons in _FORCES.get(side, []):
            converted = torque_from_force(raw[name], to_newtons, raw[_LEVER], raw[_MASS])
            torque = np.where(np.isnan(torque), converted, torque)
        out.append(torque)
    return out[0], out[1]


def _norm_median(sex: np.ndarray, age: np.ndarray, protocol: np.ndarray) -> np.ndarray:
    """The abduction norm (N·m/kg) of each row; NaN where sex or age is not known."""
    table = np.array(norms.ABDUCTION.anchors)
    female = np.interp(age, table[:, 0], table[:, 1])
    male = np.interp(age, table[:, 0], table[:, 2])
    median = np.where(sex == 1.0, male, np.where(sex == 0.0, female, np.nan))
    factors = np.array([norms.PROTOCOL_FACTOR[p] for p in norms.PROTOCOLS])
    known = ~np.isnan(protocol)
    factor = np.ones_like(median)
    factor[known] = factors[protocol[known].astype(int)]
    return median * factor


def _derive(raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Derived strength columns from both sides' torque, the side of pain, sex, age and position.

    ``side``, ``sex`` and ``protocol`` are coded by position in the contract's ``allowed``.
    """
    left, right = _torques(raw)
    side = raw["side"]
    weaker = np.fmin(left, right)
    stronger = np.fmax(left, right)
    is_left = side == _SIDES.index("left")
    is_right = side == _SIDES.index("right")
    symptomatic = np.where(is_left, left, np.where(is_right, right, weaker))
    other = np.where(is_left, right, np.where(is_right, left, stronger))
    asymmetry = 100.0 * (other - symptomatic) / other  # NaN in, NaN out; torque is > 0
    norm = _norm_median(*np.broadcast_arrays(raw["sex"], raw["age_years"], raw[_PROTOCOL]))
    return {"hip_abduction_pct_of_norm": 100.0 * symptomatic / norm,
            "hip_abduction_asymmetry_pct": asymmetry}


def model_matrix(raw: Mapping[str, Any], n: int) -> np.ndarray:
    """Assemble the model matrix (n, len(MODEL_COLUMNS)) from encoded raw columns.

    ``raw`` maps record field names (and ``complaint``) to float arrays of length ``n`` or to
    scalars shared by every row; a field that is absent is taken as not recorded. A finding
    that does not apply to a row's complaint or profile is set aside (NaN); the rows each
    restriction sets aside are found once, for every column it restricts.
    """
    derived = _derive({name: np.asarray(raw.get(name, np.nan), dtype=float)
                       for name in _RAW_INPUTS})
    X = np.empty((n, len(MODEL_COLUMNS)))
    for j, col in enumerate(MODEL_COLUMNS):
        value = derived[col] if col in derived else raw.get(col)
        X[:, j] = np.nan if value is None else value
    complaint = np.broadcast_to(np.asarray(raw.get(_ROW_COLUMN, np.nan), dtype=float), (n,))
    profile = np.broadcast_to(np.asarray(raw.get("activity_profile", np.nan), dtype=float), (n,))
    set_aside: dict[tuple[bytes, bytes | None], np.ndarray] = {}  # columns share restrictions
    for j, complaints, profiles in _APPLICABILITY:
        key = (complaints.tobytes(), None if profiles is None else profiles.tobytes())
        if key not in set_aside:
            applies = np.isin(complaint, complaints)
            if profiles is not None:
                applies &= np.isin(profile, profiles)
            set_aside[key] = np.flatnonzero(~applies)
        X[set_aside[key], j] = np.nan
    return X


def _scalar_norm(sex: float, age: float, protocol: float) -> float:
    """The abduction norm of one record: :func:`_norm_median` on one row, memoised (sex, age
    and position take few values), so the scalar path gives the vectorised path's bits."""
    sex, age, protocol = (_NAN if v != v else v for v in (sex, age, protocol))  # one NaN key
    key = (sex, age, protocol)
    norm = _NORM_CACHE.get(key)
    if norm is None:
        norm = float(_norm_median(*(np.array([v]) for v in key))[0])
        if len(_NORM_CACHE) < 4096:
            _NORM_CACHE[key] = norm
    return norm


_NORM_CACHE: dict[tuple[float, float, float], float] = {}
_NAN = float("nan")
_SIDE_LEFT, _SIDE_RIGHT = float(_SIDES.index("left")), float(_SIDES.index("right"))


def _ratio(a: float, b: float) -> float:
    """``a / b`` as numpy divides (NaN or infinity rather than an exception for ``b == 0``)."""
    if b == 0.0:
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(a) / np.float64(b))
    return a / b


def _fmin(a: float, b: float) -> float:
    """``np.fmin`` on two floats: the smaller, ignoring a NaN unless both are."""
    return b if a != a else a if b != b else (a if a <= b else b)


def _fmax(a: float, b: float) -> float:
    """``np.fmax`` on two floats: the larger, ignoring a NaN unless both are."""
    return b if a != a else a if b != b else (a if a >= b else b)


def _derive_one(raw: Mapping[str, float]) -> tuple[float, float]:
    """:func:`_derive` for one record of Python floats: (percent of norm, asymmetry), the same
    arithmetic in the same order, so the same bits (a test checks it against the vectorised
    path)."""
    get = raw.get
    lever, mass = get(_LEVER, _NAN), get(_MASS, _NAN)
    torques = []
    for side in (_LEFT, _RIGHT):
        torque = get(side, _NAN)
        for name, to_newtons in _FORCES.get(side, ()):
            if torque != torque:  # NaN: not recorded, take the force
                torque = _ratio(get(name, _NAN) * to_newtons * lever, mass)
        torques.append(torque)
    left, right = torques
    side_code = get("side", _NAN)
    if side_code == _SIDE_LEFT:
        symptomatic, other = left, right
    elif side_code == _SIDE_RIGHT:
        symptomatic, other = right, left
    else:
        symptomatic, other = _fmin(left, right), _fmax(left, right)
    asymmetry = _ratio(100.0 * (other - symptomatic), other)
    norm = _scalar_norm(get("sex", _NAN), get("age_years", _NAN), get(_PROTOCOL, _NAN))
    return _ratio(100.0 * symptomatic, norm), asymmetry


_PCT_COL = MODEL_COLUMNS.index("hip_abduction_pct_of_norm")
_ASYM_COL = MODEL_COLUMNS.index("hip_abduction_asymmetry_pct")
_COMPLAINT_COL = MODEL_COLUMNS.index(_ROW_COLUMN)
_SET_ASIDE: tuple[tuple[int, frozenset[float], frozenset[float] | None], ...] = tuple(
    (j, frozenset(complaints.tolist()), None if profiles is None else frozenset(profiles.tolist()))
    for j, complaints, profiles in _APPLICABILITY)
_ENCODING: dict[str, tuple[int, dict[str, float] | None]] = {
    name: (MODEL_COLUMNS.index(name) if name in MODEL_COLUMNS else -1,
           _CODES[name] if f.kind == "category" else None)
    for name, f in _RECORDED.items()}
"""Each recorded field's model column (-1: an input of a derived column only) and, for a
category, its codes: :func:`encode_value` prepared once per field."""
_BLANKS: dict[tuple[float, float | None], tuple[int, ...]] = {}


def _set_aside(code: float, profile: float) -> tuple[int, ...]:
    """The columns set aside in the row of the complaint coded ``code`` for a patient of the
    activity profile coded ``profile`` (NaN: not recorded), worked out once per pair."""
    key = (code, profile if profile == profile else None)  # one key for NaN
    blank = _BLANKS.get(key)
    if blank is None:
        blank = tuple(j for j, applies, profiles in _SET_ASIDE
                      if code not in applies or (profiles is not None and profile not in profiles))
        if len(_BLANKS) < 256:  # complaints x profiles
            _BLANKS[key] = blank
    return blank


def rows_from_record(record: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """A validated record -> (complaints, model rows), one row per complaint in record order.

    The serving path: one record's values as Python floats, the derived columns computed once,
    the rows built as lists and turned into one array. Bit for bit what :func:`model_matrix`
    builds from the same values (the training and monitoring path; a test compares them).
    """
    complaints: list[str] = list(record[ROWS.name])
    raw: dict[str, float] = {}
    base = [_NAN] * len(MODEL_COLUMNS)
    for name, value in record.items():
        encoding = _ENCODING.get(name)
        if encoding is not None:
            j, codes = encoding
            x = _NAN if value is None else float(value) if codes is None else codes[value]
            raw[name] = x
            if j >= 0:
                base[j] = x
    base[_PCT_COL], base[_ASYM_COL] = _derive_one(raw)
    profile = raw.get("activity_profile", _NAN)
    codes = _CODES[ROWS.name]
    rows = []
    for c in complaints:
        code = codes[c]
        row = base.copy()
        row[_COMPLAINT_COL] = code
        for j in _set_aside(code, profile):
            row[j] = _NAN
        rows.append(row)
    return complaints, np.array(rows, dtype=float).reshape(len(complaints), len(MODEL_COLUMNS))


def rows_from_frame(frame: pd.DataFrame) -> np.ndarray:
    """A training frame (one complaint per row, contract column names) -> model matrix.

    Categorical columns may hold strings or pandas categoricals; values outside the contract's
    categories become NaN (validation upstream reports them). A categorical over exactly the
    contract's values (what :func:`training.schema.canonical` makes) is read by its codes.
    """
    n = len(frame)
    raw: dict[str, np.ndarray] = {}
    for name in dict.fromkeys((*MODEL_COLUMNS, *_RAW_INPUTS, "activity_profile")):
        if name not in frame.columns:
            continue
        f = column_feature(name)
        column = frame[name]
        if f.kind == "category":
            import pandas as pd  # only here: serving never builds frames

            dtype = column.dtype
            if not (isinstance(dtype, pd.CategoricalDtype)
                    and list(dtype.categories) == list(f.allowed)):
                column = column.astype(pd.CategoricalDtype(list(f.allowed)))
            codes = column.cat.codes.to_numpy()
            raw[name] = np.where(codes < 0, np.nan, codes.astype(float))
        else:
            raw[name] = column.to_numpy(dtype=float, na_value=np.nan)
    return model_matrix(raw, n)
