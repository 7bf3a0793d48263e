"""Next-value prediction on a noisy sine wave: the lecture notes' worked example.

100 points evenly spaced over [-2 pi, 2 pi], y = sin(x) + 0.1 * N(0, 1); every window of 10
consecutive values predicts the value that follows (90 windows). The split is chronological
(train first, test last), so nothing from the future leaks into training. The trivial baseline
predicts the mean of the training targets; the last value of the window (persistence) is
reported beside it. The noise sets a floor: no predictor beats MSE = noise^2 = 0.01 on average.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from rnnbench.tasks.base import SPLITS, Task, TaskConfig, TaskSpec, mse_np


class SineConfig(TaskConfig):
    n_points: Annotated[int, Field(gt=0)] = 100
    noise: Annotated[float, Field(ge=0)] = 0.1  # standard deviation of the additive noise
    window: int = 10  # input steps per example
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15
    solved_mse: Annotated[float, Field(gt=0)] = 0.02  # twice the noise floor at noise 0.1

    @model_validator(mode="after")
    def _fits(self) -> SineConfig:
        if self.window < 1:
            raise ValueError(f"window = {self.window}: too short for the sine task: it needs "
                             "at least 1 step")
        n_windows = self.n_points - self.window
        if n_windows * (1 - self.val_fraction - self.test_fraction) < 1 or \
                min(self.val_fraction, self.test_fraction) * n_windows < 1:
            raise ValueError(f"window = {self.window}: leaves {n_windows} windows from "
                             f"{self.n_points} points, too few for train/val/test")
        return self


class Sine(Task):
    name = "sine"
    Config = SineConfig

    def spec(self, cfg: SineConfig) -> TaskSpec:
        return TaskSpec(
            name=self.name, shape="many_to_one", input_size=1, output_size=1, loss="mse",
            readout="last", metric="mse", higher_is_better=False,
            solved_threshold=cfg.solved_mse,
            claims=("worked_example",),
            definition="lecture notes' example: sin over [-2pi, 2pi], 100 points, noise 0.1, "
                       "window 10 -> next value",
        )

    def generate(self, cfg: SineConfig, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        t = np.linspace(-2 * np.pi, 2 * np.pi, cfg.n_points)
        series = np.sin(t) + cfg.noise * rng.standard_normal(cfg.n_points)
        n = cfg.n_points - cfg.window
        idx = np.arange(n)[:, None] + np.arange(cfg.window)[None, :]
        x = series[idx][..., None].astype(np.float32)  # (N, window, 1)
        y = series[cfg.window:][:, None].astype(np.float32)  # (N, 1)
        n_test = max(1, round(n * cfg.test_fraction))
        n_val = max(1, round(n * cfg.val_fraction))
        cuts = {"train": slice(0, n - n_val - n_test), "val": slice(n - n_val - n_test, n - n_test),
                "test": slice(n - n_test, n)}
        return {s: {"x": x[cuts[s]], "y": y[cuts[s]]} for s in SPLITS}

    def baseline(self, cfg: SineConfig, splits: dict) -> dict:
        test = splits["test"]
        mean = float(splits["train"]["y"].mean())
        return {"name": "predict the training mean", "mse": mse_np(np.full_like(test["y"], mean),
                                                                   test["y"]),
                "mse_last_value": mse_np(test["x"][:, -1, :], test["y"]),
                "mse_noise_floor": cfg.noise ** 2}

    def metrics(self, cfg: SineConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        mse = mse_np(pred, y)
        return {"loss": mse, "mse": mse, "rmse": float(np.sqrt(mse))}


TASK = Sine()
