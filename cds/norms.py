"""Normative isometric strength by sex and age (hand-held dynamometry, N·m/kg).

What "weak" means depends on who is weak: the same 1.0 N·m/kg is normal for a woman of 75 and
about 45 % below the norm of a man of 25. This module holds the norm tables the contract reads
(:mod:`cds.features` shows them as reference ranges; :mod:`cds.intake` derives
``hip_abduction_pct_of_norm`` from them) and the simulated pain-free controls reproduce
(a test checks).

A norm is the median torque of pain-free people of one sex at one age, with the between-person
spread as a log-normal SD; the 10th-90th percentile is the reference range shown to clinicians.
Ages between anchors are interpolated linearly; the table covers 12-90 years (the contract's
accepted ages).

Sources (each anchor row cites its own):

* Young adults, hip abduction, supine belt-fixed HHD: F 1.3-1.8, M 1.6-2.2 N·m/kg; 50-70 y
  0.9-1.3 N·m/kg; between-person CV 20-30 %; decline ~0.5-1 %/y after 40: the priors table of
  CLINICAL.md (de Sousa 2019, control arms of the meta-analysis; Allison 2016, pain-free
  controls of the gluteal tendinopathy study).
* Age shape in women (10-13, 19-29, 41-55, 63-79 y): Daun & Kibele 2019 (PLoS One
  14:e0213361; HHD at 75 % of thigh length, torque / body weight): abductor torque per kg
  falls across age more steeply than knee-extensor torque.
* Sex gap: men stronger than women at 20-39 y, similar at 40-49 y: Leporace 2023 (Fisioter
  Pesqui 30:e22006823; HHD, 127 adults 20-49 y).
* Adolescents: torque per kg rises through childhood and adolescence, boys diverging from girls
  from about 10-14 y and peaking at 14-15 y: Eek 2006 (Arch Phys Med Rehabil 87:1091, isometric
  torque 5-15 y); Hébert 2011 (Pediatr Phys Ther 23:289, HHD 4-17 y); Daloia 2018 (Braz J Phys
  Ther 22:474). The 12-17 y anchors below follow that shape; their exact values are a *choice*
  bounded by the 10-13 y group of Daun & Kibele 2019 and the young-adult anchors.
* Test position: side-lying reads ~27 % higher than supine and ~30 % higher than standing
  (Cerda Vega 2018, PLoS One 13:e0202248); the norm of a protocol is the supine norm times its
  factor. Test-retest variation of a standardised HHD protocol 3-12 % (Thorborg 2010, Scand J
  Med Sci Sports 20:493).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MUSCLES",
    "NORMS",
    "PROTOCOLS",
    "PROTOCOL_FACTOR",
    "Norm",
    "abduction_norm_nm_per_kg",
    "norm_nm_per_kg",
    "pct_of_norm",
    "reference_range",
    "reference_text",
]

Z90 = 1.2816
"""Standard normal quantile of the 90th percentile: the reference range is the 10th-90th."""

PROTOCOLS: tuple[str, ...] = ("supine_belt", "side_lying", "standing")
"""Dynamometer test positions the contract accepts (hip abduction)."""

PROTOCOL_FACTOR: dict[str, float] = {
    "supine_belt": 1.0,   # the tables below (Thorborg 2010 / 2013 supine protocol)
    "side_lying": 1.27,   # side-lying 27 % above supine (Cerda Vega 2018)
    "standing": 1.27 / 1.30,  # side-lying 30 % above standing (Cerda Vega 2018)
}


@dataclass(frozen=True)
class Norm:
    """A norm table: ``(age, female median, male median)`` anchors and the log-normal SD."""

    muscle: str
    anchors: tuple[tuple[float, float, float], ...]
    log_sd: float
    source: str

    def median(self, sex: str, age: float) -> float:
        """Median torque (N·m/kg) at ``age`` for ``sex`` ("female" / "male")."""
        col = 1 if sex == "female" else 2
        ages = [a[0] for a in self.anchors]
        age = min(max(float(age), ages[0]), ages[-1])
        for lo, hi in zip(self.anchors, self.anchors[1:], strict=False):
            if lo[0] <= age <= hi[0]:
                t = (age - lo[0]) / (hi[0] - lo[0])
                return lo[col] + t * (hi[col] - lo[col])
        return self.anchors[-1][col]  # pragma: no cover - the clamp above makes this unreachable


# Hip abduction (gluteus medius and minimus), supine, belt-fixed HHD, N·m/kg. The anchors keep the
# CLINICAL.md priors: young adults F 1.55 (range of means 1.3-1.8), M 1.85 (1.6-2.2); a decline
# of ~0.8-1.2 %/y after 40 to 1.1-1.35 at 60-70 (0.9-1.3); the sex gap narrowing after 40
# (Leporace 2023); adolescents rising to the adult value by 18 (Eek 2006; Hébert 2011).
ABDUCTION = Norm(
    "hip_abduction",
    anchors=(
        (12.0, 1.25, 1.30),  # choice within Daun & Kibele 2019 (girls 10-13) / Eek 2006 shape
        (15.0, 1.45, 1.60),  # choice: boys diverge from ~14 y (Daloia 2018; Hébert 2011)
        (18.0, 1.55, 1.85),  # young adults (CLINICAL.md priors: de Sousa 2019; Allison 2016)
        (40.0, 1.55, 1.80),  # flat to 40 (CLINICAL.md: decline after 40); Leporace 2023
        (50.0, 1.42, 1.60),  # gap narrows at 40-49 (Leporace 2023); ~0.8-1.4 %/y decline
        (60.0, 1.28, 1.46),  # 50-70 y 0.9-1.3, men at its upper edge (CLINICAL.md priors)
        (70.0, 1.12, 1.34),  # Daun & Kibele 2019: steep abductor decline by 63-79 y
        (80.0, 1.00, 1.18),  # choice: ~1 %/y continued (CLINICAL.md priors)
        (90.0, 0.90, 1.04),  # choice: ~1 %/y continued
    ),
    log_sd=0.22,  # between-person CV 20-30 % (CLINICAL.md priors: de Sousa 2019; Allison 2016)
    source="CLINICAL.md priors (de Sousa 2019; Allison 2016); Daun & Kibele 2019; "
           "Leporace 2023; Eek 2006; Hébert 2011",
)

# The three other strength findings of the contract. Their young-adult values are the order of
# magnitude of HHD studies of pain-free adults (Leporace 2023: hip external rotators and knee
# extensors by sex, 20-49 y; Thorborg 2010: hip ER and extension protocols); they are a *choice*
# not checked against a table row, with the age shape of hip abduction. They give the reference
# ranges clinicians see; the model reads these findings as recorded (N·m/kg).
KNEE_EXTENSION = Norm(
    "knee_extension",
    anchors=((12.0, 1.80, 1.90), (18.0, 2.30, 2.80), (40.0, 2.25, 2.70), (60.0, 1.95, 2.20),
             (90.0, 1.40, 1.55)),
    log_sd=0.22,
    source="choice: order of magnitude of Leporace 2023 (HHD, 20-49 y)",
)
HIP_EXTERNAL_ROTATION = Norm(
    "hip_external_rotation",
    anchors=((12.0, 0.45, 0.47), (18.0, 0.55, 0.65), (40.0, 0.55, 0.63), (60.0, 0.47, 0.52),
             (90.0, 0.35, 0.38)),
    log_sd=0.22,
    source="choice: order of magnitude of Leporace 2023; Thorborg 2010 (seated ER)",
)
HIP_EXTENSION = Norm(
    "hip_extension",
    anchors=((12.0, 1.30, 1.35), (18.0, 1.70, 2.05), (40.0, 1.68, 2.00), (60.0, 1.40, 1.55),
             (90.0, 1.00, 1.10)),
    log_sd=0.25,
    source="choice: order of magnitude of Thorborg 2010 (prone hip extension)",
)

NORMS: dict[str, Norm] = {n.muscle: n for n in (ABDUCTION, KNEE_EXTENSION,
                                                 HIP_EXTERNAL_ROTATION, HIP_EXTENSION)}
MUSCLES: tuple[str, ...] = tuple(NORMS)


def norm_nm_per_kg(muscle: str, sex: str, age: float, protocol: str = "supine_belt") -> float:
    """Median torque of pain-free people of ``sex`` at ``age`` for ``muscle`` (N·m/kg)."""
    return NORMS[muscle].median(sex, age) * PROTOCOL_FACTOR[protocol]


def abduction_norm_nm_per_kg(sex: str, age: float, protocol: str = "supine_belt") -> float:
    """Median isometric hip abduction torque of pain-free people of ``sex`` at ``age``.

    >>> round(abduction_norm_nm_per_kg("male", 25), 2)
    1.83
    >>> round(abduction_norm_nm_per_kg("female", 70), 2)
    1.12
    """
    return norm_nm_per_kg("hip_abduction", sex, age, protocol)


def pct_of_norm(torque_nm_per_kg: float, sex: str, age: float, muscle: str = "hip_abduction",
                protocol: str = "supine_belt") -> float:
    """A torque as a percentage of the sex- and age-specific median (100 = at the norm)."""
    return 100.0 * torque_nm_per_kg / norm_nm_per_kg(muscle, sex, age, protocol)


def reference_range(muscle: str, sex: str, age: float,
                    protocol: str = "supine_belt") -> tuple[float, float]:
    """The 10th-90th percentile of pain-free people (N·m/kg), log-normal around the median."""
    median = norm_nm_per_kg(muscle, sex, age, protocol)
    spread = math.exp(Z90 * NORMS[muscle].log_sd)
    return median / spread, median * spread


def reference_text(muscle: str, ages: Sequence[float] = (15, 25, 45, 65, 80)) -> str:
    """The sex- and age-specific reference ranges in words, for the contract's help text."""
    parts = []
    for sex, short in (("female", "F"), ("male", "M")):
        cells = []
        for age in ages:
            lo, hi = reference_range(muscle, sex, age)
            cells.append(f"{age:g} y {lo:.2f}-{hi:.2f}")
        parts.append(f"{short}: " + ", ".join(cells))
    return "; ".join(parts)
