"""The `train:` section of params.yaml, and the part of it a task may override."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from rnnbench.config import PositiveFloat, PositiveInt, ResultModel, StrictModel


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


RUN_SCHEMA_VERSION = 1


class RunResult(ResultModel):
    """result.json: one training run's whole record (rnnbench.training.run writes it; the
    report, the studies and the sweeps read it)."""

    schema_version: Literal[1]
    task: str
    model: str
    family: str
    facts: dict[str, Any]  # the family's registry facts (models.families.Family.facts)
    seed: int
    stage: str
    model_cfg: dict[str, Any] = Field(alias="model_config")  # resolved width included
    task_config: dict[str, Any]
    mlflow_run_id: str
    git_commit: str  # the code the run was trained with
    status: Literal["ok", "diverged"]
    reason: str | None
    diverged_at_step: int | None
    steps: int
    epochs: float
    train_time_s: float  # optimiser steps only
    wall_time_s: float  # evaluation included
    steps_to_solve: int | None
    time_to_solve_s: float | None
    early_stop: bool  # whether reaching the threshold ended training
    keep_best: bool  # whether the model tested is the best-validation checkpoint
    stopped: Literal["budget", "solved", "patience", "diverged"]  # what ended training
    best_step: int | None  # step of the best validation metric (the kept checkpoint)
    clipped_fraction: float
    threads: dict[str, int]
    compile_s: float
    val: dict[str, float]
    test: dict[str, float]  # the final model on the test split
    metric: str  # the task's headline metric, a key of test
    higher_is_better: bool
    claims: list[str]  # the report's claims this task feeds (TaskSpec.claims)
    definition: str
    solved_threshold: float | None
    solved: bool
    baseline: dict[str, float | str]  # the trivial baseline on the test split, and its name
    n_params: int
    device: str
    dtype: str
    data_sha256: str
    breakdowns: dict[str, Any]
    train_eval: dict[str, Any]  # the final model on (part of) the training split
    lengths: dict[str, Any] | None  # the same weights at longer lengths
    gates: dict[str, Any] | None  # keep-gate statistics over the memory spans


class RunScalars(ResultModel):
    """metrics.json: the scalars of result.json a user compares across runs (`dvc metrics
    show`), rounded; unknown ones left out."""

    test: float | None = None  # the task's metric on the test split
    solved: bool
    steps: int
    solve_at: int | None = None  # steps to the threshold
    train_s: float | None = None
    solve_s: float | None = None
    params: int
