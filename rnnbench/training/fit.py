"""THE training loop: one `fit` for every model and every task.

Models are torch modules honouring rnnbench.models.contract.SequenceModel (the Numba RNN too:
its BPTT runs inside an autograd Function); every optimiser step is rnnbench.training.step's
TrainStep, the same code for all of them.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from rnnbench.config import ConfigError
from rnnbench.tasks.base import Split, TaskSpec
from rnnbench.training.encode import DTYPES, encode_inputs, encode_targets
from rnnbench.training.schema import TrainConfig
from rnnbench.training.step import TrainStep

MetricsFn = Callable[[np.ndarray, np.ndarray], dict[str, float]]
EpochCallback = Callable[[dict, dict[str, list[float]]], None]


@dataclass
class FitResult:
    status: str = "ok"  # "ok" or "diverged"
    reason: str | None = None
    diverged_at_step: int | None = None
    steps: int = 0
    epochs: float = 0.0  # optimiser steps / steps per epoch
    train_time_s: float = 0.0  # optimiser steps only, evaluation excluded
    wall_time_s: float = 0.0  # everything inside fit, evaluation included
    steps_to_solve: int | None = None  # first step count whose validation metric was solved
    time_to_solve_s: float | None = None  # train_time_s at that point
    early_stop: bool = False  # whether reaching the threshold ended training (stopping())
    keep_best: bool = False  # whether the model tested is the best-validation checkpoint
    stopped: str = "budget"  # what ended training: budget, solved, patience or diverged
    best_step: int | None = None  # step of the best validation metric (the kept checkpoint)
    clipped_fraction: float = 0.0  # fraction of steps whose gradient exceeded the clip level
    threads: dict[str, int] = field(default_factory=dict)  # intra-op threads in force
    compile_s: float = 0.0  # JIT compilation (or cache loading) before training, not in times
    val: dict[str, float] = field(default_factory=dict)  # validation metrics of the tested model
    test: dict[str, float] = field(default_factory=dict)  # test metrics of the final model
    curves: list[dict] = field(default_factory=list)  # one row per validation
    test_pred: np.ndarray | None = field(default=None, repr=False)  # final model, test split

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("curves", "test_pred")}


def resolve_device(requested: str, cpu_only: bool = False) -> torch.device:
    """The device of train.device (the only key that sets it: a task's train overrides have no
    device), or a ConfigError naming that key where 'cuda' cannot be had."""
    if requested == "cuda" and (cpu_only or not torch.cuda.is_available()):
        if cpu_only:
            why = "this model runs on the CPU only"
        elif torch.version.cuda is None:
            why = f"no CUDA device is available (torch {torch.__version__} is built without CUDA)"
        else:
            why = "no CUDA device is available (none is visible)"
        raise ConfigError(f"train.device = 'cuda': {why}; set train.device to auto or cpu")
    if requested == "auto" and torch.cuda.is_available() and not cpu_only:
        return torch.device("cuda")
    return torch.device("cpu")


def pin_threads(threads: int) -> dict[str, int]:
    """Pin torch's and Numba's intra-op threads and every loaded OpenMP/BLAS pool (numpy's and
    scipy's OpenBLAS, the libgomp behind Numba); return what is in force. Left at one thread per
    core, idle pool workers spin and slow torch steps many times over on a small machine."""
    from threadpoolctl import threadpool_info, threadpool_limits

    torch.set_num_threads(threads)
    pinned = {"torch_threads": torch.get_num_threads()}
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        pinned["numba_threads"] = numba.get_num_threads()
    threadpool_limits(limits=threads)  # process-wide until changed again
    for pool in threadpool_info():
        pinned[f"{pool['internal_api']}_threads"] = max(
            pool["num_threads"], pinned.get(f"{pool['internal_api']}_threads", 0))
    return pinned


def stopping(cfg: TrainConfig, spec: TaskSpec) -> tuple[bool, bool]:
    """(stop at the threshold, keep the best-validation checkpoint): as configured, or where
    left null, by the data: a generated task may stop once solved and tests its last model; a
    real-data task trains its whole budget and tests its best-validation checkpoint."""
    early = (not spec.real_data) if cfg.early_stop is None else cfg.early_stop
    best = spec.real_data if cfg.keep_best is None else cfg.keep_best
    return early, best


def improves(value: float, best: float | None, higher_is_better: bool) -> bool:
    """A finite validation metric better than the best so far (None: nothing yet)."""
    if not math.isfinite(value):
        return False
    return best is None or (value > best if higher_is_better else value < best)


def steps_per_epoch(n_train: int, cfg: TrainConfig, spec: TaskSpec) -> int:
    """Batches in one pass over the training rows: chunks of `streams` rows for stateful tasks
    (the task lays its rows out in whole chunks), else batches of cfg.batch_size."""
    return n_train // spec.streams if spec.stateful else math.ceil(n_train / cfg.batch_size)


def planned_steps(n_train: int, cfg: TrainConfig, spec: TaskSpec) -> int:
    """Optimiser steps fit will take unless it stops early: epochs x batches, capped."""
    total = cfg.max_epochs * steps_per_epoch(n_train, cfg, spec)
    return min(total, cfg.max_steps) if cfg.max_steps else total


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
    """Model outputs for x in batches, in order. A stateful model reads x's chunks from a fresh
    state (batch_size must then be the task's streams) and gets its training state back."""
    model.eval()
    stateful = model.stateful
    if stateful:
        saved, model.state = model.state, None
    out = [model(x[i:i + batch_size]).cpu().double().numpy() for i in range(0, len(x), batch_size)]
    if stateful:
        model.state = saved
    model.train()
    return np.concatenate(out)


def fit(model: torch.nn.Module, spec: TaskSpec, metrics_fn: MetricsFn, data: dict[str, Split],
        cfg: TrainConfig, seed: int, *, cpu_only: bool = False,
        on_start: Callable[[], None] | None = None,
        on_epoch: EpochCallback | None = None) -> FitResult:
    """Train `model` in place on data['train'], validating every `cfg.eval_every` steps (each
    epoch by default), testing the final model at the end.

    The model must already be initialised from `seed` (see models.build_model); `seed` here
    orders the batches. A non-finite loss or gradient ends the run as status 'diverged'.
    Models with `takes_targets` (encoder-decoders) get the batch's targets for teacher forcing.
    Stateful tasks take their chunks in order, carrying the state (truncated BPTT).
    Stopping (`stopping`): at the threshold if early stopping applies, after cfg.patience
    validations without a new best metric, else at the budget; the steps and time to the
    threshold are recorded whether or not training stops there. With keep_best, the weights
    of the best validation round are put back before the test.
    on_start() runs once the model is on its device and dtype, compiled and threads pinned,
    before the first step (the probes of the untrained model run there).
    """
    t_start = time.perf_counter()
    device = resolve_device(cfg.device, cpu_only)
    dtype = DTYPES[cfg.dtype]
    result = FitResult()
    model.to(device=device, dtype=dtype)
    # Models with JIT-compiled kernels (the Numba RNN) compile here, outside the timed steps.
    result.compile_s = model.precompile()
    result.threads = pin_threads(cfg.threads)  # after compiling: every native pool is loaded
    if on_start is not None:
        on_start()
    tensors = {s: (encode_inputs(d["x"], spec, dtype).to(device),
                   encode_targets(d["y"], spec, dtype).to(device)) for s, d in data.items()}
    x_train, y_train = tensors["train"]
    n = len(x_train)
    step = TrainStep(model, cfg, spec)
    rng = np.random.default_rng(seed)
    per_epoch = steps_per_epoch(n, cfg, spec)
    total = planned_steps(n, cfg, spec)
    n_clipped = 0
    eval_batch = spec.streams if spec.stateful else max(cfg.batch_size, 256)

    def evaluate(split: str) -> dict[str, float]:
        x, y = tensors[split]
        return metrics_fn(predict(model, x, eval_batch), data[split]["y"])

    def batches():  # index arrays, epoch after epoch
        while True:
            if spec.stateful:  # every stream's chunks in order, from a fresh state each epoch
                model.reset_state()
                yield from (np.arange(k * spec.streams, (k + 1) * spec.streams)
                            for k in range(per_epoch))
            else:  # each epoch a fresh seeded permutation
                yield from np.array_split(rng.permutation(n), per_epoch)

    def diverge(step: int, why: str) -> None:
        result.status, result.diverged_at_step, result.reason = "diverged", step, why

    period = cfg.eval_every or per_epoch  # optimiser steps between validations
    result.early_stop, result.keep_best = stopping(cfg, spec)
    best_value, best_state, since_best = None, None, 0
    order = batches()
    bar = tqdm(total=total, desc=f"{spec.name}", disable=not sys.stderr.isatty(), leave=False)
    while result.steps < total and result.status == "ok":
        series: dict[str, list[float]] = {"train_loss": [], "grad_norm": []}
        t_round = time.perf_counter()
        while result.steps < total and len(series["train_loss"]) < period:
            batch = torch.from_numpy(next(order)).to(device)
            outcome = step(x_train[batch], y_train[batch])
            if outcome.failure is not None:
                diverge(result.steps + 1, f"{outcome.failure} at step {result.steps + 1}")
                break
            result.steps += 1
            n_clipped += outcome.clipped
            series["train_loss"].append(outcome.loss)
            series["grad_norm"].append(outcome.grad_norm)
            bar.update(1)
        result.train_time_s += time.perf_counter() - t_round
        if not series["train_loss"]:
            break
        result.epochs = result.steps / per_epoch
        result.val = evaluate("val")
        if not all(math.isfinite(v) for v in result.val.values()):
            diverge(result.steps, f"non-finite validation metrics after step {result.steps}")
        row = {"epoch": round(result.epochs, 4), "step": result.steps,
               "train_time_s": round(result.train_time_s, 4),
               "train_loss": float(np.mean(series["train_loss"])),
               **{f"val_{k}": v for k, v in result.val.items()}}
        result.curves.append(row)
        if on_epoch is not None:
            on_epoch(row, series)
        bar.set_postfix({spec.metric: f"{result.val.get(spec.metric, float('nan')):.4g}"})
        value = result.val.get(spec.metric, math.nan)
        if improves(value, best_value, spec.higher_is_better):
            best_value, since_best, result.best_step = value, 0, result.steps
            best_val = dict(result.val)
            if result.keep_best:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since_best += 1
        if result.steps_to_solve is None and spec.is_solved(value):
            result.steps_to_solve, result.time_to_solve_s = result.steps, result.train_time_s
            if result.early_stop:
                result.stopped = "solved"
                break
        if cfg.patience is not None and since_best >= cfg.patience and result.status == "ok":
            result.stopped = "patience"
            break
    bar.close()
    if result.status != "ok":
        result.stopped = "diverged"
    elif best_state is not None:
        model.load_state_dict(best_state)
        result.val = best_val
    result.clipped_fraction = n_clipped / max(result.steps, 1)
    if result.status == "ok":
        result.test_pred = predict(model, tensors["test"][0], eval_batch)
        result.test = metrics_fn(result.test_pred, data["test"]["y"])
    result.wall_time_s = time.perf_counter() - t_start
    return result
