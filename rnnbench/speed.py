"""The speed benchmark: recurrent cores timed fairly, side by side, with the hardware recorded.

Procedure (rnnbench.speed_timing): warm-up calls untimed; each sample loops the call until
min_sample_s have passed and divides; CUDA synchronised around every call; threads pinned and
recorded; median and IQR reported, raw samples kept; all cases of a shape group interleaved so
ratios come from side-by-side samples. Flop counts: rnnbench.flops. Start-up: rnnbench.speed_numba.

speed.json, schema_version 1 (times in ms per call, rates per second, memory in MiB):
  schema_version: 1
  config: the SpeedConfig used;  wall_s: seconds the whole run took
  environment: {cpu_model, cpu_count, cpu_affinity, gpu_name, cuda_version, cudnn_version, python,
                platform, torch, numba, numpy, thread_pools: [threadpoolctl view],
                threads: {torch_threads, numba_threads?,
                torch_interop_threads}, thread_env: {OMP_NUM_THREADS, ...}}
  matmul: {device: {n, dtype, device, numpy_gflops? (CPU), torch_gflops, rate_gflops}}
  configs: [{index, key, family, hidden, batch, seq_len, input_size, layers, bidirectional, device,
             dtype, cudnn (null on CPU), params, forward_ms, fwd_bwd_ms, train_step_ms,
             latency_b1_ms, train_seq_per_s, train_steps_per_s (time steps/s), train_gflops,
             forward_gflops, matmul_fraction, peak_mem_mib, compile_s (numba_rnn, else null),
             flops: {forward, fwd_bwd, train_step}}]
  ratios: [{name, quantity, family (null for family ratios), numerator, denominator, device,
            hidden, batch, seq_len, input_size, layers, bidirectional, <stats>}]
  numba_vs_torch: [{hidden, batch, seq_len, input_size, torch_train_step_ms, numba_train_step_ms,
                    speedup (torch/numba: > 1 means Numba is faster), torch_forward_ms,
                    numba_forward_ms, forward_speedup, numba_gflops, matmul_fraction}]
  timer_check: [{key, quantity, ours_ms, timer_ms, ratio (ours/Timer)}]
  numba_compile: {first_call_s, warm_call_s, compile_s, compiled_earlier_in_process, ...} | null
  cached_start: {shape, dtype, threads, fresh_cache: {...}, cached: {...}, target_numba_work_s,
                 cached_meets_target} | null
  skipped: [{device, family?, reason}]
  mlflow_runs: {"<grid>/<device>": run_id}
<stats> (every *_ms and speedup object, and ratios): {median, q25, q75, iqr, samples}.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from rnnbench.config import PositiveFloat, PositiveInt, StrictModel
from rnnbench.flops import Shape
from rnnbench.speed_bench import Case, make_bench
from rnnbench.speed_env import environment, matmul_rate, native_thread_limits
from rnnbench.speed_export import log_and_write
from rnnbench.speed_grid import config_record, group_cases, group_ratios, numba_point, time_group
from rnnbench.speed_timing import timer_check
from rnnbench.train import pin_threads

SCHEMA_VERSION = 1
Family = Literal["rnn", "lstm", "gru", "numba_rnn"]
NonNegInt = Annotated[int, Field(ge=0)]


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


class SpeedConfig(StrictModel):
    """The `speed:` section of params.yaml. The defaults are a QUICK grid: 64 configurations + 8
    Numba grid points, about 85 s on two shared CPU cores, ~22 s of it the two Numba start-up
    child processes (cached_start).

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

    models: list[Family] = Field(["rnn", "lstm", "gru", "numba_rnn"], min_length=1)
    hidden: list[PositiveInt] = Field([32, 128], min_length=1)  # H, units per direction
    batch: list[PositiveInt] = Field([16], min_length=1)  # B, sequences per call
    seq_len: list[PositiveInt] = Field([25, 50, 100], min_length=1)  # T: 3 to fit a + b T
    input_size: PositiveInt = 32  # D, features per time step
    layers: list[PositiveInt] = Field([1, 2], min_length=1)  # stacked layers; >1 gives ratios
    bidirectional: list[bool] = Field([False, True], min_length=1)  # both give bi/uni ratios
    numba_grid: NumbaGrid | None = NumbaGrid()  # null: skip the numba_rnn vs rnn grid
    warmup: NonNegInt = 2  # untimed calls of each case before its samples
    repeats: PositiveInt = 5  # timed samples per case and quantity
    min_sample_s: PositiveFloat = 0.01  # s: each sample loops the call at least this long
    threads: PositiveInt = 1  # torch and Numba intra-op threads, pinned and recorded
    devices: list[Literal["cpu", "cuda"]] = Field(["cpu", "cuda"], min_length=1)  # cuda: if any
    check_timer: NonNegInt = 2  # configurations cross-checked against torch's benchmark Timer
    dtype: Literal["float32", "float64"] = "float32"  # of the models and of the matmul yardstick
    cached_start: bool = True  # time two fresh processes (empty Numba cache, then reused): ~30 s
    seed: NonNegInt = 0  # weights, inputs and the fixed loss tensor

    @model_validator(mode="after")
    def _no_duplicates(self) -> SpeedConfig:
        for name in ("models", "hidden", "batch", "seq_len", "layers", "bidirectional",
                     "devices"):
            _unique(name, getattr(self, name))
        return self


def _device_skip(device: str) -> str | None:
    if device == "cuda" and not torch.cuda.is_available():
        return "no CUDA device is available"
    return None


def _models_grid(cfg: SpeedConfig, device: str, data: dict) -> None:
    families = [f for f in cfg.models if device == "cpu" or f != "numba_rnn"]
    if len(families) < len(cfg.models):
        data["skipped"].append({"device": device, "family": "numba_rnn",
                                "reason": "NumbaRNN runs on the CPU only"})
    if not families:
        return
    rate = data["matmul"][device]["rate_gflops"]
    compile_s = (data["numba_compile"] or {}).get("compile_s")
    for h, b, t in itertools.product(cfg.hidden, cfg.batch, cfg.seq_len):
        cases = group_cases(families, h, b, t, cfg.input_size, cfg.layers, cfg.bidirectional,
                            device, cfg.dtype)
        times = time_group(cases, cfg.warmup, cfg.repeats, cfg.min_sample_s, cfg.seed)
        for c in cases:
            data["configs"].append({"index": len(data["configs"]),
                                    **config_record(c, times, rate, compile_s)})
        data["ratios"] += group_ratios(cases, times)


def _numba_grid(cfg: SpeedConfig, data: dict) -> None:
    rate = data["matmul"]["cpu"]["rate_gflops"]
    for h, b, t, d in cfg.numba_grid.points():
        data["numba_vs_torch"].append(
            numba_point(h, b, t, d, cfg.dtype, cfg.warmup, cfg.repeats, cfg.min_sample_s,
                        rate, cfg.seed))


def _timer_checks(cfg: SpeedConfig, data: dict, threads: int) -> None:
    """Train-step timings of `check_timer` configurations spread over the grid, both ways."""
    configs = data["configs"]
    if not configs or not cfg.check_timer:
        return
    picks = sorted({int(i) for i in np.linspace(0, len(configs) - 1, cfg.check_timer)})
    for i in picks:
        c = configs[i]
        shape = Shape(c["family"], c["hidden"], c["batch"], c["seq_len"], c["input_size"],
                      c["layers"], c["bidirectional"])
        bench = make_bench(Case(shape, c["device"], c["dtype"], c["cudnn"]), cfg.seed)
        res = timer_check(bench.train_step, threads, cfg.warmup, cfg.repeats, cfg.min_sample_s,
                          bench.sync)
        data["timer_check"].append({"key": c["key"], "quantity": "train_step", **res})


def _load_numba() -> None:
    """Load Numba, its threading layer and scipy's BLAS (which Numba's np.dot calls) now, so
    that the thread pins and limits reach them."""
    import scipy.linalg.cython_blas  # noqa: F401

    import rnnbench.models.numba_rnn  # noqa: F401


def measure_all(cfg: SpeedConfig) -> dict:
    """Every measurement, in memory: the speed.json dict, without the MLflow run ids."""
    t0 = time.perf_counter()
    numba_used = "numba_rnn" in cfg.models or cfg.numba_grid is not None
    if numba_used:
        _load_numba()
    threads = pin_threads(cfg.threads)
    with native_thread_limits(cfg.threads) as pools:
        env = environment(threads)
        env["thread_pools"] = pools
        data = _measure(cfg, env, numba_used)
    data["wall_s"] = time.perf_counter() - t0
    return data


def _measure(cfg: SpeedConfig, env: dict, numba_used: bool) -> dict:
    data: dict = {"schema_version": SCHEMA_VERSION, "config": cfg.model_dump(),
                  "environment": env, "matmul": {}, "configs": [], "ratios": [],
                  "numba_vs_torch": [], "timer_check": [], "numba_compile": None,
                  "cached_start": None, "skipped": []}
    if numba_used and "cpu" in cfg.devices:  # first Numba call of the run: before any other
        from rnnbench.speed_numba import compile_time

        data["numba_compile"] = compile_time(cfg.dtype)
    for device in cfg.devices:
        reason = _device_skip(device)
        if reason:
            data["skipped"].append({"device": device, "reason": reason})
            continue
        data["matmul"][device] = matmul_rate(device, cfg.dtype, cfg.warmup, cfg.repeats,
                                             cfg.min_sample_s)
        _models_grid(cfg, device, data)
        if device == "cpu" and cfg.numba_grid is not None:
            _numba_grid(cfg, data)
    _timer_checks(cfg, data, cfg.threads)
    if cfg.cached_start and numba_used and "cpu" in cfg.devices:
        from rnnbench.speed_numba import cached_start

        data["cached_start"] = cached_start(cfg.threads, cfg.dtype)
    return data


def run_speed(cfg: SpeedConfig, out: Path, experiment: str, stage: str = "cli") -> dict:
    """Measure everything, log one MLflow run per (grid, device), then write out/speed.json and
    out/speed.csv atomically; returns the speed.json dict. A failure leaves no new files."""
    data = measure_all(cfg)
    log_and_write(data, Path(out), experiment, stage)
    return data
