"""A sweep's trials: models x tasks x seeds x every combination of the axes (or a seeded sample
of them), each with its overrides, its validated params and its configuration hash. Every trial
trains with the sweep's `threads` (its train.threads, overridden), the CPUs it asks Ray for.

Mistakes in the sweep itself (an unknown model, task or axis key, an axis on train.threads, a
model that cannot serve a task) stop the sweep before anything runs, in one line. A value that
fails validation for one trial (say train.lr = -1) makes that trial invalid: it is recorded as
failed and the others run.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnbench.config import ConfigError, read_yaml_file, validate
from rnnbench.sweep.schema import SweepConfig


@dataclass
class Trial:
    model: str
    task: str
    seed: int
    overrides: list[str]  # --set overrides on top of the base params: threads, then the axes
    label: str  # the axes' values, e.g. "train.lr=0.003, tasks.adding.seq_len=50"
    params: Any = None  # validated Params, or None when invalid
    config_hash: str | None = None
    error: str | None = None  # why the trial's params are invalid
    result: dict = field(default_factory=dict)  # filled in by the run

    @property
    def variant(self) -> str:
        """The model as the sweep's report names it: with the trial's axes' values."""
        return f"{self.model} [{self.label}]" if self.label else self.model

    @property
    def name(self) -> str:
        return f"{self.model}/{self.task}/seed{self.seed}" + (f" [{self.label}]" if self.label
                                                              else "")


@dataclass
class Plan:
    cfg: SweepConfig
    params_path: Path  # the base params file, absolute: workers on other machines load it
    experiment: str  # the base params' MLflow experiment
    trials: list[Trial]


def load_sweep(path: Path) -> tuple[SweepConfig, Path]:
    """The sweep file validated, and the absolute path of its base params file."""
    path = Path(path)
    raw = read_yaml_file(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(raw).__name__}")
    cfg = validate(SweepConfig, raw, str(path))
    return cfg, (path.parent / cfg.params).absolute()


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"  # JSON is YAML: 0.003, "norm", [1, 2], true


def _has_key(raw: Any, key: str) -> bool:
    node = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def plan(path: Path) -> Plan:
    """Every trial of the sweep at `path`, validated; ConfigError for mistakes in the sweep."""
    from rnnbench.models.families import why_not
    from rnnbench.params import load_params
    from rnnbench.tasks.registry import get_task
    from rnnbench.training.run import config_hash, run_identity

    cfg, params_path = load_sweep(path)
    base = load_params(params_path)
    raw = base.model_dump(mode="json", by_alias=True)
    for m in cfg.models:
        base.model(m)
    for t in cfg.tasks:
        spec = get_task(t).spec(base.task(t))
        for m in cfg.models:
            reason = why_not(base.models[m], spec)
            if reason:
                raise ConfigError(f"{path}: model {m!r} cannot serve task {t!r}: {reason}")
    if "train.threads" in cfg.axes:
        raise ConfigError(f"{path}: axes.train.threads: a trial trains with the sweep's "
                          "`threads` (the CPUs it asks Ray for); set that, one sweep per value")
    for key in cfg.axes:
        for m in cfg.models:
            if not _has_key(raw, key.replace("{model}", m)):
                raise ConfigError(f"{path}: axes.{key}: no such key in {params_path} "
                                  f"(model {m!r})")
    combos = list(itertools.product(*cfg.axes.values())) if cfg.axes else [()]
    grid = list(itertools.product(cfg.models, cfg.tasks, cfg.seeds, combos))
    if cfg.sample is not None:
        if cfg.sample.n > len(grid):
            raise ConfigError(f"{path}: sample.n = {cfg.sample.n}: the grid has only "
                              f"{len(grid)} trials")
        picked = sorted(random.Random(cfg.sample.seed).sample(range(len(grid)), cfg.sample.n))
        grid = [grid[i] for i in picked]
    threads = _override("train.threads", cfg.threads)
    trials = []
    for model, task, seed, combo in grid:
        keys = [k.replace("{model}", model) for k in cfg.axes]
        axes = [_override(k, v) for k, v in zip(keys, combo, strict=True)]
        t = Trial(model, task, seed, [threads, *axes], ", ".join(axes))
        try:
            t.params = load_params(params_path, t.overrides)
            t.config_hash = config_hash(run_identity(t.params, task, model, seed))
        except ConfigError as exc:
            t.error = str(exc)
        trials.append(t)
    return Plan(cfg, params_path, base.experiment, trials)
