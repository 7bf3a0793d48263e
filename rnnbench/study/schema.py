"""The `studies:` section of params.yaml: controlled experiments over ordinary tracked runs."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from rnnbench.config import ResultModel, Seed, StrictModel

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


SUMMARY_SCHEMA_VERSION = 1
Num = float | None  # non-finite numbers are written as null


class StudyVariant(ResultModel):
    label: str
    slug: str
    overrides: list[str]  # common + own
    x_value: Any  # the x-axis value of this variant (first model), or null


class StudyRun(ResultModel):
    """One run of a study: variant x model x seed, in that order."""

    variant: str
    slug: str
    x_value: Any
    model: str
    family: str
    seed: int
    path: str  # relative to the summary
    mlflow_run_id: str
    status: Literal["ok", "diverged"]
    diverged_at_step: int | None
    reason: str | None
    metric: str
    higher_is_better: bool
    solved_threshold: float | None
    test_metric: Num  # null unless ok
    val_metric: Num
    baseline: Num  # the trivial baseline's value of `metric`
    baselines: dict[str, Num | str]  # the task's whole baseline, its name included
    solved: bool
    steps: int
    steps_to_solve: int | None
    time_to_solve_s: float | None
    train_time_s: float
    clipped_fraction: float
    train: dict[str, Any]  # {optimizer, lr, clip, clip_value}
    model_cfg: dict[str, Any] = Field(alias="model_config")
    n_params: int
    facts: dict[str, Any]  # the family's registry facts
    train_metric: Num  # the final model's `metric` on the training split
    best_val_metric: Num  # the best validation value of `metric` over the run
    # {loss, init: FIG | null, trained: FIG + {step, train_grad_norm} | null},
    # FIG = {decay_factor, horizon: {threshold: lag | null}, end_ratio, sigma_max}
    grad: dict[str, Any]
    probes: list[dict[str, Any]]  # probes.json slimmed to the l0_fwd ratio curve


class StudySummary(ResultModel):
    """summary.json of one study (rnnbench.study.run writes it; the report reads it)."""

    schema_version: Literal[1]
    study: str
    kind: str
    task: str
    x: str | None  # override key of the x-axis
    models: list[str]
    seeds: list[int]
    params_path: str
    stage: str
    wall_time_s: float
    processes: int  # runs at a time: with more than 1, the runs' times shared the machine
    variants: list[StudyVariant]
    runs: list[StudyRun]
