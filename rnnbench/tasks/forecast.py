"""Shared machinery of the forecasting tasks on real series (sunspots, co2).

A task supplies one fixed univariate series; every window of `window` consecutive values
predicts the single value `horizon` steps after the window's last one (many-to-one, one output).
Window i reads series[i : i + window] and its target is series[t], t = i + window + horizon - 1;
the extra per-example array "target_index" holds t.

Split. The windows are taken in time order and cut chronologically: the first ones train, the
next `val_fraction` validate, the last `test_fraction` test. Every value an earlier split's
windows read (inputs or targets) lies strictly before the first target of any later split, so no
split sees a later split's targets. The one overlap allowed is the other way round: a later
split's inputs may read values of earlier splits (their inputs and targets), which are the
observed past at forecast time. The first validation window's inputs lie wholly inside the
values the training windows read (with horizon 1 they are exactly the last `window` of them),
and likewise for the test windows after the validation ones.

Scaling. The "training part" of the series is every value the training windows read:
series[:n_train + window + horizon - 1]. Its mean and standard deviation scale the whole series
(inputs and targets, all splits); nothing after it enters the scaler. The model is trained with
MSE on the scaled values ("loss"); "rmse" is reported in the series' own units
(RMSE_scaled x std). "mase" is the mean absolute scaled error of Hyndman & Koehler (2006),
"Another look at measures of forecast accuracy": the forecasts' MAE (in original units) divided
by the in-sample MAE of the one-step naive forecast (y_t - y_{t-1}) over the training part. The
task recomputes this scaler from its config whenever it needs it, deterministically.

Differencing (`difference`, horizon 1 only). For a trending series (co2) the model may read
and predict one-step changes d_j = series[j + 1] - series[j] instead of values: a window reads
`window` consecutive changes and predicts the next one, whose target is the value
series[t] = series[t - 1] + d_(t-1), series[t - 1] being the last value the window's changes
reach. The scaler's mean and std are then those of the training part's changes. A predicted
change misses the value by exactly the change's error, so "rmse" and "mase" keep their meaning.

Baselines, on the test split: persistence (the window's last value) and seasonal naive (the value
one season, `period` steps, before the target; needs period >= horizon to be a real forecast).
The one with the lower MASE is the main entry; both are reported under their own keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field, model_validator

from rnnbench.tasks.base import SPLITS, Task, TaskConfig, TaskSpec, mse_np


class ForecastConfig(TaskConfig):
    """Fields of every forecasting task; subclasses set `period`, `series()` and defaults."""

    period: ClassVar[int]  # the seasonal naive baseline's period, in steps

    window: Annotated[int, Field(ge=1)] = 20  # input steps per example
    horizon: Annotated[int, Field(ge=1)] = 1  # predict the value this many steps after the window
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15  # of the windows, after train
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15  # the last windows
    # Model the one-step changes instead of the values (horizon 1 only): see the docstring.
    difference: bool = False
    solved_mase: Annotated[float, Field(gt=0)] = 1.0  # test MASE that counts as solved

    def series(self) -> np.ndarray:
        """The full series, float64, read-only (subclasses load their dataset)."""
        raise NotImplementedError

    def series_length(self) -> int:
        """Values in the series. A dataset's config returns its known size, so that configs
        validate without loading it (importing statsmodels costs a process seconds); its
        loader checks the size (check_length)."""
        return len(self.series())

    @model_validator(mode="after")
    def _fits(self) -> ForecastConfig:
        if self.horizon > self.period:
            raise ValueError(f"horizon = {self.horizon}: longer than the seasonal period "
                             f"({self.period}), so seasonal naive would need future values")
        if self.difference and self.horizon != 1:
            raise ValueError(f"horizon = {self.horizon}: difference = true forecasts the next "
                             "step's change, so it needs horizon 1")
        if self.val_fraction + self.test_fraction >= 1:
            total = self.val_fraction + self.test_fraction
            raise ValueError(f"val_fraction + test_fraction = {total}: leaves no training windows")
        length, n = self.series_length(), n_windows(self)
        sizes = split_sizes(self, max(n, 0))
        if min(sizes.values()) < 1:
            raise ValueError(f"window = {self.window}: leaves {max(n, 0)} windows of the "
                             f"{length}-step series, too few for train/val/test")
        first_test = target_indices(self)[n - sizes["test"]]
        if first_test < self.period:
            raise ValueError(f"test_fraction = {self.test_fraction}: the first test target "
                             f"(step {first_test}) has no value one period ({self.period}) "
                             "before it")
        if train_end(self) < 3:
            raise ValueError(f"window = {self.window}: the training part is too short to scale")
        return self


def modelled(cfg: ForecastConfig) -> tuple[np.ndarray, int]:
    """(the series the model reads, its offset): the values (offset 0), or with `difference`
    their one-step changes, whose element j is series[j + 1] - series[j] (offset 1)."""
    s = cfg.series()
    return (np.diff(s), 1) if cfg.difference else (s, 0)


def n_windows(cfg: ForecastConfig) -> int:
    modelled_length = cfg.series_length() - (1 if cfg.difference else 0)  # see modelled()
    return modelled_length - cfg.window - cfg.horizon + 1


def check_length(values: np.ndarray, expected: int, what: str) -> None:
    """A loader's check that the series it read has the length configs are validated for."""
    if len(values) != expected:
        raise ValueError(f"{what} has {len(values)} values, not the {expected} expected")


def target_indices(cfg: ForecastConfig) -> np.ndarray:
    """Index into cfg.series() of each window's target, in window order."""
    offset = 1 if cfg.difference else 0
    return np.arange(n_windows(cfg)) + cfg.window + cfg.horizon - 1 + offset


def split_sizes(cfg: ForecastConfig, n: int) -> dict[str, int]:
    n_test, n_val = round(n * cfg.test_fraction), round(n * cfg.val_fraction)
    return {"train": n - n_val - n_test, "val": n_val, "test": n_test}


def train_end(cfg: ForecastConfig) -> int:
    """How many leading values of the series the training windows read, inputs and targets."""
    return int(target_indices(cfg)[split_sizes(cfg, n_windows(cfg))["train"] - 1]) + 1


def train_part(cfg: ForecastConfig) -> np.ndarray:
    """The training part: every value of the series the training windows read."""
    return cfg.series()[:train_end(cfg)]


@dataclass(frozen=True)
class Scaler:
    mean: float  # of the modelled training part (values, or changes with `difference`)
    std: float
    naive_mae: float  # in-sample MAE of the one-step naive forecast: the MASE denominator

    @classmethod
    def fit(cls, train: np.ndarray, difference: bool = False) -> Scaler:
        changes = np.diff(train)
        data = changes if difference else train
        std, naive = float(data.std()), float(np.abs(changes).mean())
        if std == 0 or naive == 0:
            raise ValueError("the training part of the series is constant: nothing to scale")
        return cls(float(data.mean()), std, naive)

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def invert(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(scaled, dtype=np.float64) * self.std + self.mean


def scaler(cfg: ForecastConfig) -> Scaler:
    return Scaler.fit(train_part(cfg), cfg.difference)


def series_sha256(values: np.ndarray) -> str:
    """sha256 of a series as little-endian float64 bytes (NaN included, as stored)."""
    a = np.ascontiguousarray(values, dtype="<f8")
    return hashlib.sha256(f"{a.shape}".encode() + a.tobytes()).hexdigest()


class ForecastTask(Task):
    """A forecasting task: subclasses set name, Config, `units` and `dataset_source`."""

    units: ClassVar[str]  # what the series measures, for the spec's definition

    def dataset_source(self, cfg: ForecastConfig) -> dict:
        raise NotImplementedError

    def spec(self, cfg: ForecastConfig) -> TaskSpec:
        what = "the next change" if cfg.difference else f"the value {cfg.horizon} after"
        return TaskSpec(
            name=self.name, shape="many_to_one", input_size=1, output_size=1, loss="mse",
            readout="last", metric="mase", higher_is_better=False,
            solved_threshold=cfg.solved_mase,
            definition=f"{self.units}: {cfg.window} steps -> {what}; chronological split, "
                       "train-only scaling, MASE (Hyndman & Koehler 2006)",
            real_data=True,
        )

    def generate(self, cfg: ForecastConfig, seed: int) -> dict:
        # A fixed series: the seed plays no part, every seed gives the same splits.
        z = scaler(cfg).apply(modelled(cfg)[0]).astype(np.float32)
        n = n_windows(cfg)
        start = np.arange(n)
        x = z[start[:, None] + np.arange(cfg.window)[None, :]][..., None]  # (N, window, 1)
        y = z[start + cfg.window + cfg.horizon - 1][:, None]  # (N, 1)
        target = target_indices(cfg)
        sizes = split_sizes(cfg, n)
        bounds = np.cumsum([0] + [sizes[s] for s in SPLITS])
        return {s: {"x": x[a:b], "y": y[a:b], "target_index": target[a:b].astype(np.int64)}
                for s, a, b in zip(SPLITS, bounds[:-1], bounds[1:], strict=True)}

    def metrics(self, cfg: ForecastConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        # A scaled error times std is the error in the series' units, also with `difference`:
        # a predicted change plus the known last value misses the value by the change's error.
        sc = scaler(cfg)
        err = pred.astype(np.float64) - y.astype(np.float64)  # scaled units
        mse = mse_np(pred, y)
        return {"loss": mse, "rmse": float(np.sqrt(mse)) * sc.std,
                "mase": float(np.abs(err).mean()) * sc.std / sc.naive_mae}

    def baseline_predictions(self, cfg: ForecastConfig, split: dict) -> dict[str, np.ndarray]:
        """Scaled predictions (N, 1) of the two trivial forecasters for a split, as the model
        would output them: values, or with `difference` changes from the last known value."""
        s, t = cfg.series(), split["target_index"]
        base = s[t - 1] if cfg.difference else 0.0
        sc = scaler(cfg)
        return {"persistence": sc.apply(s[t - cfg.horizon] - base)[:, None],
                "seasonal": sc.apply(s[t - cfg.period] - base)[:, None]}

    def baseline(self, cfg: ForecastConfig, splits: dict) -> dict:
        test = splits["test"]
        names = {"persistence": "persistence (the window's last value)",
                 "seasonal": f"seasonal naive (the value {cfg.period} steps before the target)"}
        figures = {k: self.metrics(cfg, p, test["y"])
                   for k, p in self.baseline_predictions(cfg, test).items()}
        best = min(figures, key=lambda k: figures[k]["mase"])
        out = {"name": names[best], **figures[best]}
        for k, f in figures.items():
            out |= {f"{m}_{k}": v for m, v in f.items()}
        return out

    def source(self, cfg: ForecastConfig) -> dict:
        return {"kind": "dataset", **self.dataset_source(cfg)}
