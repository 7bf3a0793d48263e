"""The `studies:` section of params.yaml: controlled experiments over ordinary tracked runs."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from rnnbench.config import Seed, StrictModel

KINDS = ("sigma", "forget_bias", "clip_mode", "memory", "depth", "overfit", "activation")
Override = Annotated[str, Field(min_length=3)]


class StudyConfig(StrictModel):
    """One entry of the `studies:` section."""

    # how the report shows it; depth: 1-3 layers at equal width and equal size; overfit: LSTM
    # vs GRU on a small dataset, train/validation gap; activation: tanh vs relu at each sigma
    kind: Literal["sigma", "forget_bias", "clip_mode", "memory", "depth", "overfit",
                  "activation"]
    task: str
    models: list[str] = Field(min_length=1)  # presets from params.models
    seeds: list[Seed] = Field(min_length=1)
    common: list[Override] = []  # overrides applied to every variant, before its own
    variants: dict[str, list[Override]] = Field(min_length=1)  # ordered: label -> overrides
    x: str | None = None  # override key whose value is the x-axis ('{model}' is substituted)
    # Runs at a time, each in its own forked process. Every run is seeded and single-threaded,
    # so the results do not depend on it; only the runs' wall-clock times share the machine.
    processes: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        if self.kind in ("sigma", "memory", "depth", "activation") and not self.x:
            raise ValueError(f"x: required for kind {self.kind!r} (the key of the x-axis)")
        slugs: dict[str, str] = {}
        for label in self.variants:
            s = slug(label)
            if not s or s in slugs:
                raise ValueError(f"variants.{label}: its folder name {s!r} is empty or already "
                                 f"used by variant {slugs.get(s)!r}")
            slugs[s] = label
        return self


def slug(label: str) -> str:
    """'sigma=0.5, clip' -> 'sigma-0.5-clip': a variant's folder name."""
    return re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-.")
