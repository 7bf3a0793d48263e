"""Typed, validated configuration: params.yaml -> pydantic models.

Raw dicts exist only at the YAML boundary (and in MLflow). Every section forbids unknown keys,
and every failure is reported as one line naming the file, the key path and the bad value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")  # preset names become DVC stage names and paths


class ConfigError(ValueError):
    """A bad params file or override; str() is the one-line message shown to the user."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- training
class TrainOverrides(StrictModel):
    """Training knobs a task may set for itself (its batch size and budget differ by task)."""

    batch_size: PositiveInt | None = None
    max_epochs: PositiveInt | None = None
    max_steps: PositiveInt | None = None
    eval_every: PositiveInt | None = None
    lr: PositiveFloat | None = None


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
    early_stop: bool = True  # stop once the validation metric reaches the task's threshold
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: PositiveInt = 1  # torch intra-op threads, pinned and recorded
    dtype: Literal["float32", "float64"] = "float32"

    def with_overrides(self, over: TrainOverrides | None) -> TrainConfig:
        if over is None:
            return self
        return self.model_copy(update=over.model_dump(exclude_none=True))


# ---------------------------------------------------------------- models
class _RecurrentBase(StrictModel):
    hidden_size: PositiveInt = 64
    num_layers: PositiveInt = 1
    bidirectional: bool = False
    # Compare at equal size: when set, each task's hidden_size is chosen so that the model's
    # parameter count (for that task's input and output sizes) comes closest to this budget.
    param_budget: PositiveInt | None = None


class _ElmanBase(_RecurrentBase):
    nonlinearity: Literal["tanh", "relu"] = "tanh"
    # Recurrent matrices W_hh at initialisation: torch's uniform init (null), or a random
    # orthogonal matrix times this scale, so that every singular value equals it (the
    # vanishing/exploding experiments set sigma_max(W_hh) this way).
    w_hh_scale: PositiveFloat | None = None


class RNNConfig(_ElmanBase):
    family: Literal["rnn"]


class NumbaRNNConfig(_ElmanBase):
    family: Literal["numba_rnn"]


class LSTMConfig(_RecurrentBase):
    family: Literal["lstm"]
    # Sum b_ih + b_hh of the forget gate at initialisation; None keeps torch's uniform init.
    # 1.0 follows Jozefowicz, Zaremba & Sutskever (2015), "An Empirical Exploration of RNNs".
    forget_bias: float | None = 1.0


class GRUConfig(_RecurrentBase):
    family: Literal["gru"]


class Seq2SeqConfig(_RecurrentBase):
    """Encoder-decoder: `bidirectional` applies to the encoder, `num_layers` to both."""

    family: Literal["seq2seq"]
    cell: Literal["gru", "lstm"] = "gru"
    attention: bool = False  # additive attention, Bahdanau, Cho & Bengio (2015)
    embed_size: PositiveInt = 32  # token embedding width, encoder and decoder
    # Fraction of decoder steps fed the true previous token while training (the rest get the
    # model's own greedy prediction); evaluation always decodes greedily.
    teacher_forcing: Annotated[float, Field(ge=0, le=1)] = 1.0


FAMILIES = ("rnn", "numba_rnn", "lstm", "gru", "seq2seq")
ModelConfig = Annotated[
    RNNConfig | NumbaRNNConfig | LSTMConfig | GRUConfig | Seq2SeqConfig,
    Field(discriminator="family"),
]


# ---------------------------------------------------------------- the rest
class DataConfig(StrictModel):
    seed: Annotated[int, Field(ge=0)] = 0  # seeds every task generator; run seeds are separate


class GridBlock(StrictModel):
    models: list[str] = Field(min_length=1)
    tasks: list[str] = Field(min_length=1)


class GridConfig(GridBlock):
    """Which (model, task, seed) runs the pipeline trains: models x tasks x seeds, plus each
    extra block's models x tasks x seeds. Blocks pair models with the tasks they serve (an
    encoder-decoder with seq2seq tasks, bidirectional models with non-causal ones); each block
    is its own DVC stage, train_<block name>, in dvc.yaml."""

    seeds: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    extra: dict[str, GridBlock] = {}

    def blocks(self) -> dict[str, GridBlock]:
        """'grid' for the main block, 'grid.extra.<name>' for the others."""
        return {"grid": self, **{f"grid.extra.{k}": b for k, b in self.extra.items()}}

    def runs(self) -> list[tuple[str, str, int]]:
        return list(dict.fromkeys((m, t, s) for b in self.blocks().values() for m in b.models
                                  for t in b.tasks for s in self.seeds))


class ReportConfig(StrictModel):
    title: str = "rnnbench report"


def _params_model() -> type[StrictModel]:
    """Params with one typed field per registered task (imported late: tasks import this)."""
    from rnnbench.models import why_not
    from rnnbench.probes import ProbeConfig
    from rnnbench.speed import SpeedConfig
    from rnnbench.study import StudyConfig
    from rnnbench.tasks import TASKS

    # Field names are prefixed (a task called `copy` would shadow BaseModel.copy); the YAML
    # keys, and so the key paths in error messages, are the aliases: the plain task names.
    task_fields: dict[str, Any] = {f"t_{n}": (t.Config | None, Field(None, alias=n))
                                   for n, t in TASKS.items()}
    tasks_model = create_model("TasksConfig", __base__=StrictModel, **task_fields)

    class Params(StrictModel):
        experiment: str = Field(min_length=1)  # MLflow experiment: the profile's name
        data: DataConfig = DataConfig()
        train: TrainConfig = TrainConfig()
        tasks: tasks_model  # type: ignore[valid-type]
        models: dict[str, ModelConfig]
        grid: GridConfig
        report: ReportConfig = ReportConfig()
        probe: ProbeConfig | None = None  # gradient-through-time probes; null: none
        speed: SpeedConfig | None = None  # the speed benchmark's grids; null: no speed stage
        studies: dict[str, StudyConfig] | None = None  # controlled experiments, memory study

        @model_validator(mode="after")
        def _cross_check(self) -> Params:
            for where, names in (("models", self.models), ("grid.extra", self.grid.extra)):
                for name in names:
                    if not NAME_RE.match(name):
                        raise ValueError(f"{where}.{name}: names must match {NAME_RE.pattern}")
            configured = self.configured_tasks()
            for where, block in self.grid.blocks().items():
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

    return Params


# ---------------------------------------------------------------- loading
def _fmt_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_error(source: str, err: ValidationError) -> str:
    e = err.errors()[0]
    parts = [str(p) for p in e["loc"] if not str(p).startswith(("function-", "tagged"))]
    if parts[:1] == ["models"] and len(parts) > 2 and parts[2] in FAMILIES:
        del parts[2]  # the discriminated union's tag, not a key the user wrote
    loc = ".".join(parts)
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        return f"{source}: {loc}: unknown key (value {_fmt_value(e['input'])})"
    if e["type"] == "missing":
        return f"{source}: {loc}: required key is missing"
    if e["type"] == "union_tag_invalid":
        return (f"{source}: {loc}.family = {_fmt_value(e['ctx']['tag'])}: unknown model family "
                f"(expected {e['ctx']['expected_tags']})")
    if e["type"] == "union_tag_not_found":
        return f"{source}: {loc}.family: required key is missing (the model's family)"
    if msg.startswith(("models.", "grid", "tasks.")):  # cross-checks carry their own path
        return f"{source}: {msg}"
    if isinstance(e["input"], dict) and re.match(r"^\w+ = ", msg):  # 'key = value: why'
        return f"{source}: {loc}.{msg}"
    where = f"{loc} = {_fmt_value(e['input'])}" if loc else _fmt_value(e["input"])
    return f"{source}: {where}: {msg}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.lr=0.01' -> (['train', 'lr'], 0.01); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected key.path=value")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({exc.problem})") from None
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None:
                nxt = node[part] = {} if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(path[: i + 1])} is not a section")
            node = nxt
        node[path[-1]] = value
    return raw


def load_params(path: str | Path = "params.yaml", overrides: list[str] | None = None):
    """Read, override and validate a params file; raise ConfigError with a one-line message."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") \
            from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [])
    source = f"{path} (with --set)" if overrides else str(path)
    try:
        return _params_model().model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None
