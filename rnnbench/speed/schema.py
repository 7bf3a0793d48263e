"""The `speed:` section of params.yaml: the grids and the procedure's knobs."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from rnnbench.config import NonNegInt, PositiveFloat, PositiveInt, ResultModel, Seed, StrictModel
from rnnbench.models.families import FAMILIES, RECURRENT_SHAPES

TIMED = [n for n, f in FAMILIES.items() if f.shapes == RECURRENT_SHAPES]  # recurrent families


def _unique(name: str, values: list) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{name}: duplicate entries in {values}")


class NumbaGrid(StrictModel):
    """numba_rnn vs torch nn.RNN (1 layer, unidirectional, training step and forward)."""

    hidden: list[PositiveInt] = Field([32, 256], min_length=1)  # H
    batch: list[PositiveInt] = Field([1, 16], min_length=1)  # B, sequences per step
    seq_len: list[PositiveInt] = Field([50], min_length=1)  # T, time steps
    input_sizes: list[PositiveInt] = Field([32, 1], min_length=1)  # D, features per step

    def points(self) -> list[tuple[int, int, int, int]]:
        return list(itertools.product(self.hidden, self.batch, self.seq_len, self.input_sizes))


class LengthGrid(StrictModel):
    """Train-step time against the sequence length T (the minGRU/minLSTM issue): each model at
    one H, B, D, at every T, as shipped, and the state-free cells also as a plain loop
    (impl "sequential"); sizes "width": every model at `hidden`, "params": every model at the
    width whose parameter count comes closest to the `reference` model's at `hidden`. All cases
    of one (size, T) are timed interleaved, training step only."""

    models: list[str] = Field(["gru", "lstm", "mingru", "minlstm"], min_length=1)
    reference: str = "gru"  # the model whose parameter count sets the equal-size widths
    hidden: PositiveInt = 64  # H
    batch: PositiveInt = 16  # B
    input_size: PositiveInt = 32  # D
    seq_len: list[PositiveInt] = Field([50, 100, 200, 400, 800, 1600, 4096], min_length=3)
    sizes: list[Literal["width", "params"]] = Field(["width", "params"], min_length=1)
    repeats: PositiveInt | None = None  # timed samples per case (null: speed.repeats)

    @model_validator(mode="after")
    def _known(self) -> LengthGrid:
        for i, m in enumerate(self.models):
            if m not in TIMED:
                raise ValueError(f"models.{i} = {m!r}: not a recurrent family the benchmark "
                                 f"times (one of {', '.join(TIMED)})")
        if self.reference not in self.models:
            raise ValueError(f"reference = {self.reference!r}: not one of models "
                             f"({', '.join(self.models)})")
        for name in ("models", "seq_len", "sizes"):
            _unique(name, getattr(self, name))
        return self


class SpeedConfig(StrictModel):
    """The `speed:` section of params.yaml. The defaults are a QUICK grid: 64 configurations + 8
    Numba grid points, about 85 s on two shared CPU cores, ~22 s of it the two Numba start-up
    child processes (cached_start). The full grids are in profiles/full-speed.yaml.

    FULL grids:
    - numba_grid, from the project's issue on the Numba RNN: hidden [32, 64, 128, 256, 512],
      batch [1, 16, 64], seq_len [50, 200], input_sizes [32, 1].
    - the models grid, on the shapes of Baidu DeepBench's RNN kernel benchmarks (vanilla RNN,
      LSTM and GRU training and inference at hidden 256..2560, batch 4..128, time steps 25..1500;
      github.com/baidu-research/DeepBench, rnn_problems.h), cut to what a CPU finishes:
      hidden [256, 512, 1024], batch [16, 32, 64], seq_len [25, 50, 100], input_size = hidden
      (DeepBench feeds H-wide inputs; here one D for the grid, e.g. 256), layers [1, 2],
      bidirectional [false, true].
    """

    models: list[str] = Field(TIMED, min_length=1)  # recurrent families of the registry
    hidden: list[PositiveInt] = Field([32, 128], min_length=1)  # H, units per direction
    batch: list[PositiveInt] = Field([16], min_length=1)  # B, sequences per call
    seq_len: list[PositiveInt] = Field([25, 50, 100], min_length=1)  # T: 3 to fit a + b T
    input_size: PositiveInt = 32  # D, features per time step
    layers: list[PositiveInt] = Field([1, 2], min_length=1)  # stacked layers; >1 gives ratios
    bidirectional: list[bool] = Field([False, True], min_length=1)  # both give bi/uni ratios
    numba_grid: NumbaGrid | None = NumbaGrid()  # null: skip the numba_rnn vs rnn grid
    length_grid: LengthGrid | None = None  # time against T from 50 to 4,096 (full profile)
    warmup: NonNegInt = 2  # untimed calls of each case before its samples
    repeats: PositiveInt = 5  # timed samples per case and quantity
    min_sample_s: PositiveFloat = 0.01  # s: each sample loops the call at least this long
    threads: Annotated[int, Field(gt=0, le=1024)] = 1  # torch, Numba, BLAS threads, pinned
    devices: list[Literal["cpu", "cuda"]] = Field(["cpu", "cuda"], min_length=1)  # cuda: if any
    check_timer: NonNegInt = 2  # configurations cross-checked against torch's benchmark Timer
    dtype: Literal["float32", "float64"] = "float32"  # of the models and of the matmul yardstick
    optimizer: Literal["adam", "sgd", "rmsprop"] = "adam"  # of the timed training step
    timer_tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.1  # |ours/Timer - 1| allowed
    cached_start: bool = True  # time two fresh processes (empty Numba cache, then reused): ~30 s
    # training steps of rnn, numba_rnn and rnn with one weight moved by one ulp side by side
    # (float64, adding T = 100, H = 64; training.parity): how soon the losses part; 0: skip
    parity_steps: NonNegInt = 60
    seed: Seed = 0  # weights and inputs

    @model_validator(mode="after")
    def _no_duplicates(self) -> SpeedConfig:
        for i, m in enumerate(self.models):
            if m not in TIMED:
                raise ValueError(f"models.{i} = {m!r}: not a recurrent family the benchmark "
                                 f"times (one of {', '.join(TIMED)})")
        for name in ("models", "hidden", "batch", "seq_len", "layers", "bidirectional",
                     "devices"):
            _unique(name, getattr(self, name))
        return self


SPEED_SCHEMA_VERSION = 3  # 3: "length", the time-vs-T grid


class TimerCheck(ResultModel):
    """Our timer against torch.utils.benchmark.Timer on one configuration's training step."""

    key: str
    quantity: str
    ours_ms: float
    timer_ms: float
    ratio: float  # ours / Timer's
    pairs: int  # samples taken in alternation, ours then Timer's
    tolerance: float
    ok: bool  # |ratio - 1| <= tolerance; the report shows a failed check as FAILED


class SpeedResult(ResultModel):
    """speed.json (rnnbench.speed writes it; the report reads it). Per-configuration records
    are those of rnnbench.speed.grid.config_record and numba_point."""

    schema_version: Literal[3]
    config: dict[str, Any]  # the speed section as run
    environment: dict[str, Any]  # hardware, libraries, threads, kernels in force
    matmul: dict[str, dict[str, Any]]  # per device: the matmul rate the fractions divide by
    configs: list[dict[str, Any]]
    ratios: list[dict[str, Any]]
    numba_vs_torch: list[dict[str, Any]]
    length: list[dict[str, Any]]  # the time-vs-T grid (speed.length_grid)
    timer_check: list[TimerCheck]
    numba_compile: dict[str, Any] | None
    cached_start: dict[str, Any] | None
    parity: dict[str, Any] | None  # rnn vs numba_rnn loss gap beside torch's 1-ulp pair
    skipped: list[dict[str, Any]]  # {device, reason} or {device, family, reason}
    wall_s: float
    mlflow_runs: dict[str, str]  # "grid/device" -> run id
