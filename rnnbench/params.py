"""params.yaml as one typed object: every concern's schema composed into `Params`.

The sections are owned by their concerns (training/schema.py, models/families.py,
probes/schema.py, speed/schema.py, study/schema.py, report/schema.py, each task module's
Config); this module only composes them and checks what spans sections (the grid's models and
tasks exist and can go together). Loading params imports neither torch nor MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, create_model, model_validator

from rnnbench.config import (
    NAME_RE,
    ConfigError,
    Seed,
    StrictModel,
    apply_overrides,
    read_yaml_file,
    validate,
)
from rnnbench.models.families import ModelConfig, why_not
from rnnbench.probes.schema import ProbeConfig
from rnnbench.report.schema import ReportConfig
from rnnbench.speed.schema import SpeedConfig
from rnnbench.study.schema import StudyConfig
from rnnbench.tasks.registry import TASKS
from rnnbench.training.schema import TrainConfig


class DataConfig(StrictModel):
    seed: Seed = 0  # seeds every task generator; run seeds are separate


class GridBlock(StrictModel):
    models: list[str] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)
    # the block's own seeds (e.g. more seeds for the runs the headline claims rest on);
    # null: grid.seeds
    seeds: list[Seed] | None = Field(None, min_length=1)


class GridConfig(StrictModel):
    """Which (model, task, seed) runs the pipeline trains: each block's models x tasks x seeds.
    Blocks pair models with the tasks they serve (an encoder-decoder with seq2seq tasks,
    bidirectional models with non-causal ones); each block is one DVC stage, train@<name>,
    which trains its runs `processes` at a time (seeded, single-threaded: the results do not
    depend on it)."""

    seeds: list[Seed] = Field(min_length=1)
    processes: int = Field(1, ge=1, le=64)
    blocks: dict[str, GridBlock] = Field(min_length=1)

    def block_runs(self, block: GridBlock) -> list[tuple[str, str, int]]:
        return [(m, t, s) for m in block.models for t in block.tasks
                for s in (block.seeds or self.seeds)]

    def runs(self) -> list[tuple[str, str, int]]:
        return [r for b in self.blocks.values() for r in self.block_runs(b)]

    def check_one_block_per_run(self) -> None:
        """Each block is its own DVC stage, and two stages cannot write one run's result."""
        seen: dict[tuple[str, str, int], str] = {}
        for name, block in self.blocks.items():
            for run in self.block_runs(block):
                if run in seen:
                    raise ValueError(f"grid.blocks.{name}: trains {run[0]} on {run[1]} with seed "
                                     f"{run[2]}, as grid.blocks.{seen[run]} does (one block per "
                                     "run: give the block other seeds, models or tasks)")
                seen[run] = name


# One optional field per registered task. Field names are prefixed (a task called `copy` would
# shadow BaseModel.copy); the YAML keys, and so the key paths in error messages, are the
# aliases: the plain task names.
TasksConfig = create_model(
    "TasksConfig", __base__=StrictModel,
    **{f"t_{n}": (t.Config | None, Field(None, alias=n)) for n, t in TASKS.items()})


class Params(StrictModel):
    experiment: str = Field(min_length=1, max_length=200)  # MLflow experiment: the profile's name
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    tasks: TasksConfig  # type: ignore[valid-type]
    models: dict[str, ModelConfig]
    grid: GridConfig
    report: ReportConfig = ReportConfig()
    probe: ProbeConfig | None = None  # gradient-through-time probes; null: none
    speed: SpeedConfig | None = None  # the speed benchmark's grids; null: no speed stage
    studies: dict[str, StudyConfig] | None = None  # controlled experiments, memory study

    @model_validator(mode="after")
    def _cross_check(self) -> Params:
        for where, names in (("models", self.models), ("grid.blocks", self.grid.blocks),
                             ("studies", self.studies or {})):
            for name in names:
                if not NAME_RE.match(name):
                    raise ValueError(f"{where}.{name[:70]}: names must match {NAME_RE.pattern}")
        configured = self.configured_tasks()
        for name, block in self.grid.blocks.items():
            where = f"grid.blocks.{name}"
            for i, m in enumerate(block.models):
                if m not in self.models:
                    raise ValueError(f"{where}.models.{i} = {m!r}: unknown model "
                                     f"(defined in models: {', '.join(self.models)})")
            for i, t in enumerate(block.tasks):
                if t not in configured:
                    raise ValueError(f"{where}.tasks.{i} = {t!r}: unknown or unconfigured "
                                     f"task (configured: {', '.join(configured)})")
            for m in block.models:
                for t in block.tasks:
                    spec = TASKS[t].spec(self.task(t))
                    reason = why_not(self.models[m], spec)
                    if reason is not None:
                        raise ValueError(f"{where}: model {m!r} ({self.models[m].family}) "
                                         f"cannot serve task {t!r} ({spec.shape}): {reason}")
        self.grid.check_one_block_per_run()
        return self

    def configured_tasks(self) -> list[str]:
        return [n for n in TASKS if getattr(self.tasks, f"t_{n}") is not None]

    def task(self, name: str) -> Any:
        cfg = getattr(self.tasks, f"t_{name}", None)
        if cfg is None:
            raise ConfigError(f"task {name!r} is not configured in params (tasks.{name})")
        return cfg

    def model(self, name: str) -> Any:
        if name not in self.models:
            raise ConfigError(f"model {name!r} is not defined in params "
                              f"(known: {', '.join(self.models)})")
        return self.models[name]


def load_params(path: str | Path = "params.yaml", overrides: list[str] | None = None) -> Params:
    """Read, override and validate a params file; raise ConfigError with a one-line message."""
    path = Path(path)
    raw = read_yaml_file(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [])
    return validate(Params, raw, params_source(path, overrides))


def params_source(path: str | Path, overrides: list[str] | None = None) -> str:
    """Where a Params came from, as its errors name it."""
    return f"{path} (with --set)" if overrides else str(path)
