"""The timed objects: a model from the registry, trained by the very step training takes.

Every case builds the family's network through the registry (core + linear head, as a training
run builds it) for a synthetic many-to-one regression task of the case's sizes, and times
rnnbench.training.step.TrainStep on it: forward, MSE on the last step's prediction, backward,
clipping by global norm and the optimiser update of `speed.optimizer`. Inputs and targets are
made once, outside any timed region. `impl` chooses how torch computes a torch cell:

- "default": as shipped. On the CPU torch runs LSTM through oneDNN's fused kernel and RNN and
  GRU through ATen's per-step loop of generic ops (aten/src/ATen/native/RNN.cpp consults
  use_mkldnn for LSTM only); on CUDA all three through cuDNN.
- "no_onednn": torch.backends.mkldnn disabled (CPU): every cell through ATen's per-step loop.
- "no_cudnn": torch.backends.cudnn disabled (CUDA): every cell through ATen's per-step loop.
- "unrolled": the cell-by-cell autograd graph of rnnbench.probes.unrolled (what the probes run).
- "sequential": state-free cells (minGRU, minLSTM) as a plain loop over t; their "default" is
  the config's default mode, the log-space parallel scan. The three above apply to torch's
  cells only.
- "numba_scan": state-free cells with the loop as one Numba kernel (CPU).

Which kernel actually ran is read from a profile of one step (kernel_of), not assumed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rnnbench.models.build import build_model
from rnnbench.models.cost import STATE_FREE, Core, StepFlops, train_step_flops
from rnnbench.models.families import FAMILIES
from rnnbench.tasks.base import TaskSpec
from rnnbench.training.schema import TrainConfig
from rnnbench.training.step import TrainStep

IMPLS = ("default", "no_onednn", "no_cudnn", "unrolled", "sequential", "numba_scan")
SCAN_MODES = {"sequential": "sequential", "numba_scan": "numba"}  # impl -> the config's mode
# A small rate: a step costs the same at any rate, and thousands of timed steps at a small
# rate leave the weights, so the range of the activations, where initialisation put them.
LR = 1e-6


@dataclass(frozen=True)
class Case:
    family: str  # a recurrent family of the registry
    hidden: int  # H
    batch: int  # B
    seq_len: int  # T
    input_size: int  # D
    layers: int = 1
    bidirectional: bool = False
    device: str = "cpu"
    dtype: str = "float32"
    impl: str = "default"  # one of IMPLS
    optimizer: str = "adam"

    def key(self) -> str:
        return (f"{self.family}/H{self.hidden}/B{self.batch}/T{self.seq_len}/D{self.input_size}"
                f"/L{self.layers}/bi{int(self.bidirectional)}/{self.device}/{self.impl}")

    @property
    def cell(self) -> str:
        return FAMILIES[self.family].fixed_cell

    def core(self) -> Core:
        return Core(self.cell, self.input_size, self.hidden, self.layers, self.bidirectional)

    def spec(self) -> TaskSpec:
        return TaskSpec(name="speed", shape="many_to_one", input_size=self.input_size,
                        output_size=1, loss="mse", readout="last", metric="mse",
                        higher_is_better=False, solved_threshold=0.0,
                        definition="random normal inputs and targets, for timing only")

    def train_config(self) -> TrainConfig:
        return TrainConfig(optimizer=self.optimizer, lr=LR, clip="norm", clip_value=1.0,
                           device=self.device, dtype=self.dtype)


def applicable(case: Case) -> str | None:
    """Why a case cannot run here, or None."""
    fam = FAMILIES[case.family]
    if case.device == "cuda" and fam.cpu_only:
        return f"{case.family} runs on the CPU only"
    if case.impl != "default" and fam.implementation != "torch":
        return f"{case.family} has one implementation ({fam.implementation})"
    state_free = case.cell in STATE_FREE
    if case.impl in SCAN_MODES and not state_free:
        return f"{case.family}'s gates read h_(t-1): it has no scan modes"
    if case.impl not in ("default", *SCAN_MODES) and state_free:
        return f"{case.impl} applies to torch's own cells only"
    if case.impl == "numba_scan" and case.device != "cpu":
        return "numba_scan applies to the CPU only"
    if case.impl == "no_onednn" and case.device != "cpu" or \
            case.impl == "no_cudnn" and case.device != "cuda":
        return f"{case.impl} applies to {'the CPU' if case.impl == 'no_onednn' else 'CUDA'} only"
    return None


@dataclass
class Bench:
    forward: Callable[[], object]  # inference on the batch, no graph
    train_step: Callable[[], object]  # one TrainStep on the batch
    latency_b1: Callable[[], object]  # inference on one sequence
    params: int  # trainable parameters of the whole model
    flops: StepFlops
    sync: Callable[[], None]
    compile_s: float  # the model's precompile() (Numba JIT or cache load), before any timing
    model: torch.nn.Module  # the network being timed
    inputs: tuple[torch.Tensor, torch.Tensor]  # the batch (x, y) every step trains on


def _flags(impl: str):
    if impl == "no_onednn":
        return torch.backends.mkldnn.flags(enabled=False)
    if impl == "no_cudnn":
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


def _under(fn: Callable[[], object], impl: str) -> Callable[[], object]:
    if impl not in ("no_onednn", "no_cudnn"):
        return fn

    def wrapped() -> object:
        with _flags(impl):
            return fn()

    return wrapped


def make_bench(case: Case, seed: int = 0) -> Bench:
    reason = applicable(case)
    if reason:
        raise ValueError(f"{case.key()}: {reason}")
    spec, cfg = case.spec(), case.train_config()
    fam = FAMILIES[case.family]
    mode = {"mode": SCAN_MODES[case.impl]} if case.impl in SCAN_MODES else {}
    model_cfg = fam.config.model_validate({"family": case.family, "hidden_size": case.hidden,
                                           "num_layers": case.layers,
                                           "bidirectional": case.bidirectional, **mode})
    device, dtype = torch.device(case.device), getattr(torch, case.dtype)
    torch.manual_seed(seed)
    model = build_model(model_cfg, spec)
    if case.impl == "unrolled":
        from rnnbench.probes.unrolled import UnrolledCore

        model.core = UnrolledCore(model.core)
    model.to(device=device, dtype=dtype)
    compile_s = model.precompile()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case.batch, case.seq_len, case.input_size, generator=gen, dtype=dtype)
    y = torch.randn(case.batch, 1, generator=gen, dtype=dtype)
    x, y = x.to(device), y.to(device)
    x1 = x[:1].clone()  # (1, T, D): latency input
    step = TrainStep(model, cfg, spec)

    def forward() -> object:
        with torch.no_grad():
            return model(x)

    def train_step() -> object:
        return step(x, y)

    def latency_b1() -> object:
        with torch.no_grad():
            return model(x1)

    params = sum(p.numel() for p in step.params)
    flops = train_step_flops(case.core(), case.batch, case.seq_len, 1, 1, case.optimizer, params)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    return Bench(*(_under(f, case.impl) for f in (forward, train_step, latency_b1)),
                 params=params, flops=flops, sync=sync, compile_s=compile_s, model=model,
                 inputs=(x, y))


def _graph_nodes(root) -> set[str]:
    """Class names of every autograd node reachable from `root` (a grad_fn)."""
    seen, todo, names = set(), [root], set()
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.add(type(node).__name__)
        todo += [n for n, _ in node.next_functions]
    return names


def kernel_of(bench: Bench, case: Case) -> str:
    """The kernel the training step's forward and backward ran, read from the autograd graph
    of one forward pass: a fused RNN kernel leaves its own backward node."""
    x, _ = bench.inputs
    with _flags(case.impl), torch.enable_grad():
        names = _graph_nodes(bench.model(x).sum().grad_fn)
    if any(n.startswith("MkldnnRnnLayerBackward") for n in names):
        return "onednn: fused (aten::mkldnn_rnn_layer)"
    if any(n.startswith("CudnnRnnBackward") for n in names):
        return "cudnn: fused (aten::_cudnn_rnn)"
    if any(n.startswith("_RNNLayerBackward") for n in names):
        return "numba: rnnbench.kernels.rnn (hand-written forward and BPTT)"
    if any(n.startswith("_NumbaScanBackward") for n in names):
        return "numba: rnnbench.kernels.scan (compiled loop, forward and backward)"
    if any(n.startswith("LogcumsumexpBackward") for n in names):
        return "scan: log-space cumsum + logcumsumexp (rnnbench.models.minimal)"
    if case.impl == "unrolled":
        return "unrolled: cell by cell, generic ops (rnnbench.probes.unrolled)"
    if case.impl == "sequential":
        return "loop: plain loop over t of elementwise ops (rnnbench.models.minimal)"
    return "aten: per-step loop of generic ops (no fused kernel)"
