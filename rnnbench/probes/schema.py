"""The `probe:` section of params.yaml: gradient-through-time probes inside every run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from rnnbench.config import PositiveInt, StrictModel

Loss = Literal["task", "final"]


class ProbeConfig(StrictModel):
    """The `probe:` params section."""

    batch_size: PositiveInt = 128  # examples in the probe batch (the first ones of `split`)
    split: Literal["train", "val", "test"] = "val"
    losses: list[Loss] = Field(default=["task", "final"], min_length=1)
    # fractions of the planned optimiser steps; 0 = at initialisation, 1 = end of training
    checkpoints: list[Annotated[float, Field(ge=0, le=1)]] = Field(default=[0.0, 0.5, 1.0],
                                                                   min_length=1)
    thresholds: list[Annotated[float, Field(gt=0, lt=1)]] = Field(default=[1e-3, 1e-6],
                                                                  min_length=1)
    bound_check: bool = True  # the per-step Jacobian bound (Elman cells only)
