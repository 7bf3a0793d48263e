"""The `train:` section of params.yaml, and the part of it a task may override."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from rnnbench.config import PositiveFloat, PositiveInt, StrictModel


class TrainOverrides(StrictModel):
    """Training knobs a task may set for itself (its batch size and budget differ by task)."""

    batch_size: PositiveInt | None = None
    max_epochs: PositiveInt | None = None
    max_steps: PositiveInt | None = None
    eval_every: PositiveInt | None = None
    lr: PositiveFloat | None = None
    early_stop: bool | None = None
    keep_best: bool | None = None
    patience: PositiveInt | None = None


class TrainConfig(StrictModel):
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"
    lr: PositiveFloat = 1e-3
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0  # SGD and RMSprop only
    batch_size: PositiveInt = 64
    max_epochs: PositiveInt = 10
    max_steps: PositiveInt | None = None  # stop after this many optimiser steps, whatever the epoch
    eval_every: PositiveInt | None = None  # optimiser steps between validations; None: each epoch
    clip: Literal["norm", "value", "none"] = "norm"  # global L2 norm, element value, or off
    clip_value: PositiveFloat = 1.0
    # stop once the validation metric reaches the task's threshold; null: on generated data
    # only (a real-data task, TaskSpec.real_data, trains its whole budget)
    early_stop: bool | None = None
    # test the checkpoint with the best validation metric, not the last; null: on real data
    keep_best: bool | None = None
    patience: PositiveInt | None = None  # stop after this many validations with no new best
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, Field(gt=0, le=1024)] = 1  # torch intra-op threads, pinned, recorded
    dtype: Literal["float32", "float64"] = "float32"

    def with_overrides(self, over: TrainOverrides | None) -> TrainConfig:
        if over is None:
            return self
        return self.model_copy(update=over.model_dump(exclude_none=True))
