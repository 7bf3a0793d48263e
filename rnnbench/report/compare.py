"""One rule for "A is better than B" and "A and B are about the same", shared by the claims that
compare settings over seeds (depth, LSTM vs GRU, overfitting, tanh vs relu).

A difference of the mean test metrics counts when it is larger than SE_FACTOR standard errors
of that difference (Welch: sqrt(s_a^2/n_a + s_b^2/n_b), the spread over seeds) and larger than
PRACTICAL times the better side's distance from the trivial baseline (a difference too small
to matter next to what the models learnt). Otherwise the two are about the same. With fewer
than two finite values on a side the spread is unknown and so is the outcome.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal

from rnnbench.report.study_rules import _mean_std

SE_FACTOR = 2.0
PRACTICAL = 0.05
RULE = (f"a difference of means counts when it exceeds {SE_FACTOR:g} standard errors of the "
        "difference (Welch, from the spread over seeds) and "
        f"{PRACTICAL:.0%} of the better side's distance from the trivial baseline; otherwise the "
        "two are about the same; fewer than two seeds on a side: unknown")
Outcome = Literal["better", "worse", "same", "unknown"]


def finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


@dataclass(frozen=True)
class Diff:
    a: float  # mean of side a
    b: float  # mean of side b
    n_a: int
    n_b: int
    gain: float  # a - b, signed so that > 0 means a is better
    se: float | None  # standard error of the difference; None below two values a side
    tolerance: float  # PRACTICAL x the better side's distance from the baseline

    @property
    def outcome(self) -> Outcome:
        if self.se is None:
            return "unknown"
        if abs(self.gain) <= max(SE_FACTOR * self.se, self.tolerance):
            return "same"
        return "better" if self.gain > 0 else "worse"

    def text(self, digits: int = 4) -> str:
        se = "spread unknown" if self.se is None else f"SE {self.se:.2g}"
        return (f"{self.a:.{digits}g} vs {self.b:.{digits}g} (n = {self.n_a}, {self.n_b}; "
                f"the first better by {self.gain:+.{digits}g}, {se})")


def compare(a, b, higher_is_better: bool, baseline: float | None) -> Diff | None:
    """a and b: metric values over seeds (non-finite and None left out); None if a side is
    empty."""
    a, b = finite(a), finite(b)
    if not a or not b:
        return None
    ma, mb = statistics.mean(a), statistics.mean(b)
    gain = ma - mb if higher_is_better else mb - ma
    se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) \
        if len(a) > 1 and len(b) > 1 else None
    best = max(ma, mb) if higher_is_better else min(ma, mb)
    tol = PRACTICAL * abs(best - baseline) if baseline is not None and math.isfinite(baseline) \
        else 0.0
    return Diff(ma, mb, len(a), len(b), gain, se, tol)


def mean_text(values) -> str:
    """'mean ± std' of the finite values, 4 significant digits; 'n/a' when there are none."""
    return _mean_std(finite(values))
