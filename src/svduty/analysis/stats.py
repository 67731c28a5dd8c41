"""Small-count statistics the analyses share (SciPy underneath).

Counts of serious violence in a CSP are often small, so intervals and tests are exact:
Garwood intervals for a Poisson count, and the conditional binomial test for the ratio of
two Poisson rates (the exact test for "did it change?"). Rates are per `per` residents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

CONFIDENCE = 0.95


def poisson_interval(count: float | np.ndarray, confidence: float = CONFIDENCE
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson count."""
    k = np.asarray(count, dtype=np.float64)
    alpha = 1 - confidence
    lower = np.where(k > 0, stats.chi2.ppf(alpha / 2, 2 * k) / 2, 0.0)
    upper = stats.chi2.ppf(1 - alpha / 2, 2 * (k + 1)) / 2
    return lower, upper


def rate(count: float | np.ndarray, population: float | np.ndarray, per: float = 1000.0
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rate per `per` residents with its exact 95% interval (NaN where no population)."""
    pop = np.asarray(population, dtype=np.float64)
    safe = np.where(pop > 0, pop, np.nan)
    lower, upper = poisson_interval(count)
    k = np.asarray(count, dtype=np.float64)
    return k / safe * per, lower / safe * per, upper / safe * per


@dataclass(frozen=True)
class Change:
    """Change between two periods of equal (or stated) exposure."""

    before: int
    after: int
    ratio: float  # after / before, exposure-adjusted
    lower: float
    upper: float
    p_value: float
    percent: float  # (ratio - 1) * 100

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - CONFIDENCE


def change(before: int, after: int, exposure_before: float = 1.0, exposure_after: float = 1.0,
           confidence: float = CONFIDENCE) -> Change:
    """Exact test of a change in a Poisson rate: conditional on the total, `after` is
    Binomial(before + after, p) with p = e_a / (e_a + e_b) under no change. The interval for
    the rate ratio comes from the Clopper-Pearson interval for p."""
    n = before + after
    null = exposure_after / (exposure_after + exposure_before)
    if n == 0:
        return Change(before, after, float("nan"), float("nan"), float("nan"), 1.0,
                      float("nan"))
    low, high = clopper_pearson(after, n, confidence)
    scale = exposure_before / exposure_after

    def ratio_of(p: float) -> float:
        return float("inf") if p >= 1 else p / (1 - p) * scale

    ratio = ratio_of(after / n) if before else float("inf")
    return Change(before, after, ratio, ratio_of(low), ratio_of(high),
                  float(stats.binomtest(after, n, null).pvalue), (ratio - 1) * 100)


def clopper_pearson(successes: int, trials: int, confidence: float = CONFIDENCE
                    ) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval for a binomial proportion, from the beta
    quantiles: the same interval as ``binomtest(...).proportion_ci(method="exact")``
    without its root finding."""
    alpha = 1 - confidence
    low = (0.0 if successes == 0 else
           float(special.betaincinv(successes, trials - successes + 1, alpha / 2)))
    high = (1.0 if successes == trials else
            float(special.betaincinv(successes + 1, trials - successes, 1 - alpha / 2)))
    return low, high
