"""SWEEP.yaml: which runs a sweep trains, validated like params.yaml (one line per error)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from rnnbench.config import NAME_RE, PositiveInt, Seed, StrictModel


class Sample(StrictModel):
    """A seeded random subset of the full grid, drawn without replacement."""

    n: PositiveInt
    seed: Seed = 0


class SweepConfig(StrictModel):
    name: str = Field(min_length=1, max_length=64)  # the sweep id, tagged on every run
    params: str = "params.yaml"  # the base params file, relative to the sweep file
    models: list[str] = Field(min_length=1)  # presets of the base params
    tasks: list[str] = Field(min_length=1)
    seeds: list[Seed] = Field(min_length=1)
    # override key -> values, crossed with each other and with models x tasks x seeds; '{model}'
    # in a key is replaced by each run's model preset (e.g. models.{model}.hidden_size)
    axes: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    sample: Sample | None = None  # null: every trial of the grid
    threads: Annotated[int, Field(gt=0, le=256)] = 1  # CPU threads a trial trains with (its
    #                                                    train.threads) and asks Ray for
    gpu: bool | None = None  # ask for one GPU per trial; null: when the cluster has GPUs and
    #                          the model can use one
    max_concurrent: PositiveInt | None = None  # trials in flight at once; null: as Ray fits

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"must match {NAME_RE.pattern} (it names folders and tags)")
        return v
