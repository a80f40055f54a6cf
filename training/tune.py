"""``cds train --tune``: a small, bounded random search over the parameters that matter here.

The signal is modest and the model must stay small (every tree costs explanation time), so the
space is narrow: ``num_leaves`` in 4-31, ``learning_rate`` log-uniform in 0.03-0.2 and
``min_data_in_leaf`` in 50-800. Each trial is a full early-stopped fit judged on the validation
split; the search stops after ``trials`` trials or once ``seconds`` have passed, whichever comes
first. The default configuration is always trial 1, so tuning never does worse on validation
than not tuning. The winner is chosen by the same rule as untuned training (the smallest model
within tolerance of the best validation loss); the trials are recorded in the metadata.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NUM_LEAVES = (4, 6, 8, 12, 16, 24, 31)
LEARNING_RATE = (0.03, 0.2)
MIN_DATA_IN_LEAF = (50, 100, 200, 400, 800)
DEFAULT = {"num_leaves": 8, "learning_rate": 0.1, "min_data_in_leaf": 200}


@dataclass(frozen=True)
class Budget:
    """How much search: at most ``trials`` trials and at most ``seconds`` of wall time."""

    trials: int = 20
    seconds: float | None = None

    def deadline(self) -> float | None:
        return None if self.seconds is None else time.monotonic() + self.seconds

    def describe(self) -> dict[str, Any]:
        return {"method": "random search", "space": {"num_leaves": list(NUM_LEAVES),
                                                     "learning_rate": list(LEARNING_RATE),
                                                     "min_data_in_leaf": list(MIN_DATA_IN_LEAF)},
                **asdict(self)}


def candidates(budget: Budget, seed: int) -> list[dict[str, Any]]:
    """The default first, then ``trials - 1`` distinct random draws (seeded)."""
    rng = np.random.default_rng(seed)
    out = [dict(DEFAULT)]
    seen = {tuple(DEFAULT.values())}
    attempts = 0
    while len(out) < budget.trials and attempts < 100 * budget.trials:
        attempts += 1
        lo, hi = (math.log(v) for v in LEARNING_RATE)
        draw = {"num_leaves": int(rng.choice(NUM_LEAVES)),
                "learning_rate": round(float(math.exp(rng.uniform(lo, hi))), 4),
                "min_data_in_leaf": int(rng.choice(MIN_DATA_IN_LEAF))}
        key = tuple(draw.values())
        if key not in seen:
            seen.add(key)
            out.append(draw)
    return out
