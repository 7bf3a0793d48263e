"""The speed benchmark: every recurrent family's training step, timed fairly, side by side.

Procedure (rnnbench.speed.timing): warm-up calls untimed; each sample loops the call until
min_sample_s have passed and divides; CUDA synchronised around every call; threads pinned and
recorded; median and IQR reported, raw samples kept; all cases of a shape group interleaved so
ratios come from side-by-side samples. What is timed: rnnbench.speed.bench (the training step
fit takes, on the model a training run builds). Flop counts: rnnbench.models.cost. Start-up:
rnnbench.speed.startup. The file's schema: rnnbench.speed.schema.SpeedResult.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import torch

from rnnbench.models.cost import STATE_FREE
from rnnbench.models.families import FAMILIES
from rnnbench.speed.bench import Case, make_bench
from rnnbench.speed.env import environment, matmul_rate, native_thread_limits
from rnnbench.speed.export import log_and_write
from rnnbench.speed.grid import config_record, group_cases, group_ratios, numba_point, time_group
from rnnbench.speed.length import time_lengths
from rnnbench.speed.schema import SPEED_SCHEMA_VERSION, SpeedConfig
from rnnbench.speed.timing import timer_check
from rnnbench.training.fit import pin_threads


def _device_skip(device: str) -> str | None:
    if device == "cuda" and not torch.cuda.is_available():
        return "no CUDA device is available"
    return None


def _models_grid(cfg: SpeedConfig, device: str, data: dict) -> None:
    families = [f for f in cfg.models if device == "cpu" or not FAMILIES[f].cpu_only]
    for f in cfg.models:
        if f not in families:
            data["skipped"].append({"device": device, "family": f,
                                    "reason": f"{f} runs on the CPU only"})
    if not families:
        return
    rate = data["matmul"][device]["rate_gflops"]
    compile_s = (data["numba_compile"] or {}).get("compile_s")
    for h, b, t in itertools.product(cfg.hidden, cfg.batch, cfg.seq_len):
        cases = group_cases(families, h, b, t, cfg.input_size, cfg.layers, cfg.bidirectional,
                            device, cfg.dtype, cfg.optimizer)
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
                        rate, cfg.seed, optimizer=cfg.optimizer))


def _timer_checks(cfg: SpeedConfig, data: dict, threads: int) -> None:
    """Train-step timings of `check_timer` configurations spread over the grid, both ways."""
    configs = data["configs"]
    if not configs or not cfg.check_timer:
        return
    picks = sorted({int(i) for i in np.linspace(0, len(configs) - 1, cfg.check_timer)})
    for i in picks:
        c = configs[i]
        case = Case(c["family"], c["hidden"], c["batch"], c["seq_len"], c["input_size"],
                    c["layers"], c["bidirectional"], c["device"], c["dtype"], c["impl"],
                    c["optimizer"])
        bench = make_bench(case, cfg.seed)
        res = timer_check(bench.train_step, threads, cfg.warmup, cfg.repeats, cfg.min_sample_s,
                          bench.sync, cfg.timer_tolerance)
        data["timer_check"].append({"key": c["key"], "quantity": "train_step", **res})


def _load_numba() -> None:
    """Load Numba, its threading layer and scipy's BLAS (which Numba's np.dot calls) now, so
    that the thread pins and limits reach them."""
    import scipy.linalg.cython_blas  # noqa: F401

    import rnnbench.models.numba_rnn  # noqa: F401


def measure_all(cfg: SpeedConfig) -> dict:
    """Every measurement, in memory: the speed.json dict, without the MLflow run ids."""
    t0 = time.perf_counter()
    numba_used = any(FAMILIES[f].implementation == "numba" for f in cfg.models) \
        or cfg.numba_grid is not None
    scans = cfg.length_grid is not None or any(FAMILIES[f].fixed_cell in STATE_FREE
                                                for f in cfg.models)
    if numba_used or scans:  # state-free cells are also timed with the Numba scan
        _load_numba()
    threads = pin_threads(cfg.threads)
    with native_thread_limits(cfg.threads) as pools:
        env = environment(threads)
        env["thread_pools"] = pools
        data = _measure(cfg, env, numba_used)
    data["wall_s"] = time.perf_counter() - t0
    return data


def _measure(cfg: SpeedConfig, env: dict, numba_used: bool) -> dict:
    data: dict = {"schema_version": SPEED_SCHEMA_VERSION, "config": cfg.model_dump(),
                  "environment": env, "matmul": {}, "configs": [], "ratios": [],
                  "numba_vs_torch": [], "length": [], "timer_check": [], "numba_compile": None,
                  "cached_start": None, "parity": None, "skipped": []}
    if numba_used and "cpu" in cfg.devices:  # first Numba call of the run: before any other
        from rnnbench.speed.startup import compile_time

        data["numba_compile"] = compile_time(cfg.dtype)
    for device in cfg.devices:
        reason = _device_skip(device)
        if reason:
            data["skipped"].append({"device": device, "reason": reason})
            continue
        data["matmul"][device] = matmul_rate(device, cfg.dtype, cfg.warmup, cfg.repeats,
                                             cfg.min_sample_s)
        _models_grid(cfg, device, data)
        if cfg.length_grid is not None:
            data["length"] += time_lengths(cfg.length_grid, device, cfg.dtype, cfg.optimizer,
                                           cfg.warmup, cfg.repeats, cfg.min_sample_s, cfg.seed)
        if device == "cpu" and cfg.numba_grid is not None:
            _numba_grid(cfg, data)
    _timer_checks(cfg, data, cfg.threads)
    if cfg.parity_steps and "numba_rnn" in cfg.models and "cpu" in cfg.devices:
        from rnnbench.training.parity import loss_divergence

        data["parity"] = loss_divergence(steps=cfg.parity_steps, seed=cfg.seed)
    if cfg.cached_start and numba_used and "cpu" in cfg.devices:
        from rnnbench.speed.startup import cached_start

        data["cached_start"] = cached_start(cfg.threads, cfg.dtype)
    return data


def run_speed(cfg: SpeedConfig, out: Path, experiment: str, stage: str = "cli") -> dict:
    """Measure everything, log one MLflow run per (grid, device), then write out/speed.json and
    out/speed.csv atomically; returns the speed.json dict. A failure leaves no new files."""
    data = measure_all(cfg)
    log_and_write(data, Path(out), experiment, stage)
    return data
