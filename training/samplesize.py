"""Enough data, or say so: the minimum sample size for developing a prediction model.

Riley RD, Ensor J, Snell KIE, et al. Calculating the sample size required for developing a
clinical prediction model. BMJ 2020;368:m441 (criteria derived in Riley et al., Stat Med
2019;38:1276-96, "Part II: binary and time-to-event outcomes"), as implemented by ``pmsampsize``
for a binary outcome. With ``P`` candidate predictor parameters, outcome prevalence ``phi`` and
an anticipated Cox-Snell R² ``R``, the minimum ``n`` is the largest of:

1. expected uniform shrinkage ``S >= 0.9`` (little overfitting):
   ``n = P / ((S - 1) * ln(1 - R / S))``;
2. optimism in Nagelkerke R² at most ``0.05``: criterion 1 with
   ``S = R / (R + 0.05 * maxR)``, where ``maxR = 1 - exp(2 * lnL0 / n)`` and
   ``lnL0 / n = phi ln(phi) + (1 - phi) ln(1 - phi)`` (the null model's log-likelihood);
3. the overall risk (the intercept) within ``+-0.05``: ``n = (1.96 / 0.05)**2 * phi (1 - phi)``.

Each ``n`` is rounded up, as ``pmsampsize`` does; events are ``n * phi`` (rounded up).

What this module assumes, and why:

* ``P`` counts the contract's model columns as a main-effects logistic model would
  (:func:`candidate_parameters`): one per number or yes/no column, ``k - 1`` per category of
  ``k`` values. Boosted trees fit interactions and non-linear effects, so for them this is a
  lower bound, never a generous one.
* Without an anticipated R² from previous evidence, ``R`` is the Cox-Snell R² that corresponds to
  a Nagelkerke R² of 0.15 (``0.15 * maxR``), the conservative default Riley et al. 2020 suggest
  when nothing better is known.
* Rows are complaints, not patients; a patient with two complaints counts twice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cds.errors import UserError
from cds.features import MODEL_COLUMNS, column_feature

__all__ = ["DEFAULT_NAGELKERKE", "SampleSize", "TooFewOutcomes", "candidate_parameters",
           "check_development", "max_cox_snell", "minimum_sample_size"]

SHRINKAGE = 0.9  # criterion 1 (Riley et al. 2020)
OPTIMISM = 0.05  # criterion 2: apparent minus adjusted Nagelkerke R²
MARGIN = 0.05  # criterion 3: +- absolute margin of the overall risk, 95% confidence
DEFAULT_NAGELKERKE = 0.15  # conservative anticipated Nagelkerke R² (Riley et al. 2020)
Z95 = 1.96


class TooFewOutcomes(UserError):
    """Too few rows or events for a model of this size (the numbers are in the message)."""

    code = "too-few-outcomes"


@dataclass(frozen=True)
class SampleSize:
    """The three criteria and the minimum they set (module docstring)."""

    parameters: int
    prevalence: float
    r2_cox_snell: float
    max_r2_cox_snell: float
    n_shrinkage: int
    shrinkage_criterion_2: float
    n_optimism: int
    n_intercept: int

    @property
    def n(self) -> int:
        """The minimum sample size: the largest of the three criteria."""
        return max(self.n_shrinkage, self.n_optimism, self.n_intercept)

    @property
    def events(self) -> int:
        """Events in a sample of the minimum size at this prevalence (rounded up)."""
        return math.ceil(self.n * self.prevalence - 1e-9)

    @property
    def events_per_parameter(self) -> float:
        return self.n * self.prevalence / self.parameters

    @property
    def nagelkerke(self) -> float:
        return self.r2_cox_snell / self.max_r2_cox_snell

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n": self.n, "events": self.events,
                "events_per_parameter": round(self.events_per_parameter, 2),
                "nagelkerke": round(self.nagelkerke, 4),
                "source": "Riley et al. BMJ 2020;368:m441 (pmsampsize, binary outcome)"}

    def lines(self) -> list[str]:
        """The criteria in words, one line each."""
        return [f"  shrinkage >= {SHRINKAGE}: n >= {self.n_shrinkage}",
                f"  optimism in Nagelkerke R² <= {OPTIMISM} (shrinkage "
                f"{self.shrinkage_criterion_2:.3f}): n >= {self.n_optimism}",
                f"  overall risk within +-{MARGIN}: n >= {self.n_intercept}",
                f"  ({self.parameters} candidate parameters, prevalence {self.prevalence:.1%}, "
                f"anticipated Cox-Snell R² {self.r2_cox_snell:.3f} = Nagelkerke "
                f"{self.nagelkerke:.2f}; Riley et al. BMJ 2020;368:m441)"]


def max_cox_snell(prevalence: float) -> float:
    """The largest Cox-Snell R² a model can reach at this prevalence (criterion 2's ``maxR``)."""
    phi = prevalence
    ln_null = phi * math.log(phi) + (1 - phi) * math.log(1 - phi)
    return 1 - math.exp(2 * ln_null)


def _n_for_shrinkage(parameters: int, r2: float, shrinkage: float) -> int:
    return math.ceil(parameters / ((shrinkage - 1) * math.log(1 - r2 / shrinkage)) - 1e-9)


def minimum_sample_size(parameters: int, prevalence: float, *, r2_cox_snell: float | None = None,
                        nagelkerke: float = DEFAULT_NAGELKERKE, shrinkage: float = SHRINKAGE,
                        optimism: float = OPTIMISM, margin: float = MARGIN) -> SampleSize:
    """Riley et al.'s three criteria for a binary outcome (module docstring).

    ``r2_cox_snell`` is the anticipated Cox-Snell R²; without it, ``nagelkerke * maxR``.
    """
    if parameters < 1:
        raise ValueError("parameters must be at least 1")
    if not 0 < prevalence < 1:
        raise ValueError("prevalence must be strictly between 0 and 1")
    max_r2 = max_cox_snell(prevalence)
    r2 = nagelkerke * max_r2 if r2_cox_snell is None else r2_cox_snell
    if not 0 < r2 < min(max_r2, shrinkage):
        raise ValueError(f"anticipated Cox-Snell R² must be in (0, {min(max_r2, shrinkage):.3f})")
    s2 = r2 / (r2 + optimism * max_r2)
    return SampleSize(parameters=parameters, prevalence=prevalence, r2_cox_snell=r2,
                      max_r2_cox_snell=max_r2,
                      n_shrinkage=_n_for_shrinkage(parameters, r2, shrinkage),
                      shrinkage_criterion_2=s2,
                      n_optimism=_n_for_shrinkage(parameters, r2, s2),
                      n_intercept=math.ceil((Z95 / margin) ** 2 * prevalence * (1 - prevalence)
                                            - 1e-9))


def candidate_parameters() -> int:
    """Parameters of a main-effects logistic model over the contract's model columns."""
    total = 0
    for column in MODEL_COLUMNS:
        f = column_feature(column)
        total += max(len(f.allowed) - 1, 1) if f.kind == "category" else 1
    return total


def check_development(y: np.ndarray, *, what: str, r2_cox_snell: float | None = None,
                      parameters: int | None = None, accept_small: bool = False) -> SampleSize:
    """The minimum for developing a model on outcomes ``y``; :class:`TooFewOutcomes` when
    ``y`` falls short (unless ``accept_small``), with the numbers and what the data can support
    instead (recalibrating the shipped model: one or two parameters)."""
    y = np.asarray(y, float)
    n, events = len(y), int(y.sum())
    if n == 0 or events in (0, n):
        raise TooFewOutcomes(f"{what}: {n} rows, {events} events: both outcomes are needed")
    prevalence = events / n
    try:
        need = minimum_sample_size(parameters or candidate_parameters(), prevalence,
                                   r2_cox_snell=r2_cox_snell)
    except ValueError as e:
        raise UserError(f"--anticipated-r2 {r2_cox_snell}: {e} at prevalence {prevalence:.1%}"
                        ) from e
    if n >= need.n or accept_small:
        return need
    recal = minimum_sample_size(2, prevalence, r2_cox_snell=r2_cox_snell)
    intercept = minimum_sample_size(1, prevalence, r2_cox_snell=r2_cox_snell)
    if n >= recal.n:
        offer = (f"these data can support recalibrating the shipped model (intercept and slope "
                 f"need n >= {recal.n}, {recal.events} events): cds recalibrate --model "
                 "production --data ...")
    elif n >= intercept.n:
        offer = (f"these data can support recalibration-in-the-large of the shipped model "
                 f"(n >= {intercept.n}, {intercept.events} events): cds recalibrate --model "
                 "production --method intercept --data ...")
    else:
        offer = (f"even recalibrating the shipped model needs n >= {intercept.n} "
                 f"({intercept.events} events); collect more outcomes (cds recalibrate when "
                 "there are)")
    raise TooFewOutcomes(
        f"{what}: {n} rows, {events} events: at least {need.n} rows with {need.events} events "
        f"are needed for a model of this size\n" + "\n".join(need.lines())
        + f"\n{offer}\n(--accept-small-sample trains anyway, recorded in the model's metadata)")
