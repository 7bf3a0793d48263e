"""One-step forecasting of the yearly sunspot number, 1700-2008.

The series is statsmodels' bundled copy of the National Geophysical Data Center's yearly sunspot
numbers (statsmodels.datasets.sunspots: 309 values, SUNACTIVITY, one a year from 1700 to 2008);
it installs with statsmodels, nothing is downloaded. The classic series of Yule (1927), "On a
method of investigating periodicities in disturbed series", who fitted it with an autoregression.

Each window of `window` years predicts the sunspot number `horizon` years after its last year.
Windows, split, train-only scaling, metrics (scaled MSE as the loss, RMSE in sunspot numbers,
MASE after Hyndman & Koehler 2006) and the two trivial baselines (persistence, and seasonal naive
with one 11-year solar cycle) are shared with the other forecasting tasks: see forecast.py.

Solved threshold. With the defaults (window 20, 15% validation, 15% test: the test targets are
the years 1966-2008) persistence scores a test MASE of 1.44 and the 11-year seasonal naive 1.69.
Both exceed 1 because the test years' cycles were stronger than the training years', on which
MASE's scale is measured; seasonal naive also suffers from the cycle's varying length (about 9
to 14 years). A least-squares linear AR(20) fitted on the training windows scores 0.92. A test
MASE of 1.0 or less counts as solved: about 30% below persistence and 40% below seasonal naive,
i.e. clearly better than either trivial forecast, and MASE's natural unit (as accurate out of
sample as the naive forecast is in sample). 64-unit GRUs and tanh RNNs reach 0.7-0.9 within the
quick profile's default budget (80 steps, under a second).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field

from rnnbench.tasks.forecast import ForecastConfig, ForecastTask, check_length, series_sha256

FIRST_YEAR = 1700
CYCLE = 11  # years: the mean length of the solar (Schwabe) cycle
YEARS = 309  # values, one a year 1700-2008 (load_series checks it)


@lru_cache(maxsize=1)
def load_series() -> np.ndarray:
    """The yearly sunspot numbers, float64, read-only; checked to be 1700, 1701, ... in order."""
    from statsmodels.datasets import sunspots  # imported late: statsmodels is slow to import

    data = sunspots.load_pandas().data
    years = data["YEAR"].to_numpy()
    values = data["SUNACTIVITY"].to_numpy(dtype=np.float64).copy()
    if not np.array_equal(years, FIRST_YEAR + np.arange(len(years))) or \
            not np.isfinite(values).all():
        raise ValueError("statsmodels' sunspots are not one finite value a year from 1700")
    check_length(values, YEARS, "statsmodels' sunspots")
    values.flags.writeable = False
    return values


class SunspotsConfig(ForecastConfig):
    period: ClassVar[int] = CYCLE

    window: Annotated[int, Field(ge=1)] = 20  # years of input: about two solar cycles
    horizon: Annotated[int, Field(ge=1)] = 1  # predict the year this many after the window
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15  # of the windows, after train
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15  # the last windows
    # Persistence scores ~1.44, seasonal naive ~1.69, linear AR(20) ~0.92 (module docstring).
    solved_mase: Annotated[float, Field(gt=0)] = 1.0  # test MASE that counts as solved

    def series(self) -> np.ndarray:
        return load_series()

    def series_length(self) -> int:
        return YEARS


class Sunspots(ForecastTask):
    name = "sunspots"
    Config = SunspotsConfig
    units = "yearly sunspot number 1700-2008 (statsmodels)"

    def dataset_source(self, cfg: SunspotsConfig) -> dict:
        import statsmodels

        values = load_series()
        return {"dataset": "statsmodels.datasets.sunspots (NGDC yearly sunspot numbers)",
                "statsmodels": statsmodels.__version__, "sha256": series_sha256(values),
                "values": len(values), "years": [FIRST_YEAR, FIRST_YEAR + len(values) - 1]}


TASK = Sunspots()
