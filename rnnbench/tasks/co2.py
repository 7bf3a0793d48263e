"""One-step forecasting of weekly atmospheric CO2 at Mauna Loa, March 1958 - December 2001.

The series is statsmodels' bundled copy of the Scripps continuous Mauna Loa record
(statsmodels.datasets.co2; Keeling & Whorf 2004, "Atmospheric CO2 concentrations derived from
flask air samples at sites in the SIO network", CDIAC Trends): 2,284 weekly values in ppmv, every
Saturday from 1958-03-29 to 2001-12-29; it installs with statsmodels, nothing is downloaded.

Missing weeks (59, in 22 gaps of 1 to 18 weeks; the first and last weeks are observed) are
filled by linear interpolation in time between the nearest observed weeks on either side. The
fill is fixed by the data alone, so it is part of the series every split sees; the sha256 in
source() is of the raw series, gaps (NaN) included.

Each window of `window` weeks predicts the concentration `horizon` weeks after its last week.
Windows, split, train-only scaling, metrics (scaled MSE as the loss, RMSE in ppmv, MASE after
Hyndman & Koehler 2006) and the trivial baselines (persistence, and seasonal naive with a
52-week year) are shared with the other forecasting tasks: see forecast.py.

The rising trend makes the values a test of extrapolation: the test weeks (1995-2001) lie above
every value of the training part, and 64-unit GRUs and RNNs trained on the scaled values score
a test MASE of 5 to 7, worse than either trivial forecast. So by default the model reads and
predicts weekly changes (`difference`, see forecast.py), whose distribution the trend barely
moves. Solved threshold: with the defaults (window 26 weeks, 15% validation, 15% test: the test
targets are 1995-2001) persistence scores a test MASE of 1.07 and seasonal naive 4.56 (it
pays a year of trend); a least-squares linear AR(26) on the training windows' changes scores
0.91 (AR(52): 0.84). A test MASE of 0.9 or less counts as solved: about 16% below persistence,
on a par with the linear autoregression. A 64-unit GRU reaches it within the quick profile's
default budget (test 0.82-0.84, validation 0.9 after 350-425 steps, 4-5 s); a tanh RNN's test
MASE is about 0.85 but its validation MASE stays above 0.95.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field

from rnnbench.tasks.forecast import ForecastConfig, ForecastTask, check_length, series_sha256

WEEKS_PER_YEAR = 52
FILL_RULE = "linear interpolation in time between the nearest observed weeks"
WEEKS = 2284  # values, weekly 1958-03-29 .. 2001-12-29 (load_raw checks it)


@lru_cache(maxsize=1)
def load_raw() -> np.ndarray:
    """The weekly series as stored (NaN for missing weeks), float64, read-only; checked to be
    weekly without skipped dates and to start and end with observed weeks."""
    from statsmodels.datasets import co2  # imported late: statsmodels is slow to import

    data = co2.load_pandas().data
    steps = np.diff(data.index.to_numpy()).astype("timedelta64[D]")
    values = data["co2"].to_numpy(dtype=np.float64).copy()
    if not (steps == np.timedelta64(7, "D")).all() or np.isnan(values[[0, -1]]).any():
        raise ValueError("statsmodels' co2 is not a weekly series with observed ends")
    check_length(values, WEEKS, "statsmodels' co2")
    values.flags.writeable = False
    return values


@lru_cache(maxsize=1)
def load_series() -> np.ndarray:
    """The weekly series with its gaps filled (FILL_RULE), float64, read-only."""
    raw = load_raw()
    gap = np.isnan(raw)
    t = np.arange(len(raw))
    values = raw.copy()
    values[gap] = np.interp(t[gap], t[~gap], raw[~gap])
    values.flags.writeable = False
    return values


class Co2Config(ForecastConfig):
    period: ClassVar[int] = WEEKS_PER_YEAR

    window: Annotated[int, Field(ge=1)] = 26  # weeks of input: half a year
    horizon: Annotated[int, Field(ge=1)] = 1  # predict the week this many after the window
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15  # of the windows, after train
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15  # the last windows
    difference: bool = True  # read and predict weekly changes: the trend leaves the scale
    # Persistence ~1.07, seasonal naive ~4.56, linear AR(26) ~0.91 (module docstring).
    solved_mase: Annotated[float, Field(gt=0)] = 0.9  # test MASE that counts as solved

    def series(self) -> np.ndarray:
        return load_series()

    def series_length(self) -> int:
        return WEEKS


class Co2(ForecastTask):
    name = "co2"
    Config = Co2Config
    units = "weekly Mauna Loa CO2 1958-2001 in ppmv (statsmodels)"

    def dataset_source(self, cfg: Co2Config) -> dict:
        import statsmodels

        raw = load_raw()
        return {"dataset": "statsmodels.datasets.co2 (Scripps Mauna Loa weekly CO2)",
                "statsmodels": statsmodels.__version__, "sha256": series_sha256(raw),
                "values": len(raw), "missing": int(np.isnan(raw).sum()), "fill": FILL_RULE}


TASK = Co2()
