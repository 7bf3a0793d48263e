"""The timed object: a recurrent core from the model registry plus a fixed scalar loss.

Every family gets the same harness: inputs x (B, T, D) and a fixed random tensor W shaped like
the output (B, T, dirs*H) are made once, outside any timed region, and the loss is
(out * W).sum(). The four callables time forward (no grad), forward + backward, one SGD training
step and batch-1 inference latency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from pydantic import TypeAdapter

from rnnbench.config import ModelConfig
from rnnbench.flops import Shape
from rnnbench.models import FAMILIES

# Any small rate: the cost of a step does not depend on it, and thousands of timed steps at a
# small rate leave the weights, so the range of the activations, where initialisation put them.
SGD_LR = 1e-6


@dataclass(frozen=True)
class Case:
    shape: Shape
    device: str  # "cpu" | "cuda"
    dtype: str  # "float32" | "float64"
    cudnn: bool | None = None  # cuDNN on/off on CUDA; None on the CPU

    def key(self) -> str:
        s = self.shape
        tail = "" if self.cudnn is None else f"/cudnn{int(self.cudnn)}"
        return (f"{s.family}/H{s.hidden}/B{s.batch}/T{s.seq_len}/D{s.input_size}/L{s.layers}"
                f"/bi{int(s.bidirectional)}/{self.device}{tail}")


@dataclass
class Bench:
    forward: Callable[[], object]
    fwd_bwd: Callable[[], object]
    train_step: Callable[[], object]
    latency_b1: Callable[[], object]
    params: int  # trainable parameters of the core
    sync: Callable[[], None]


def build_core(shape: Shape) -> torch.nn.Module:
    """The family's core through the registry: nn.RNN / nn.LSTM / nn.GRU / NumbaRNN."""
    cfg = TypeAdapter(ModelConfig).validate_python(
        {"family": shape.family, "hidden_size": shape.hidden, "num_layers": shape.layers,
         "bidirectional": shape.bidirectional})
    return FAMILIES[shape.family][1](cfg, shape.input_size)


def _with_cudnn(fn: Callable[[], object], enabled: bool | None) -> Callable[[], object]:
    if enabled is None:
        return fn

    def wrapped() -> object:
        with torch.backends.cudnn.flags(enabled=enabled):
            return fn()

    return wrapped


def make_bench(case: Case, seed: int = 0) -> Bench:
    s, device, dtype = case.shape, torch.device(case.device), getattr(torch, case.dtype)
    torch.manual_seed(seed)
    core = build_core(s).to(device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(s.batch, s.seq_len, s.input_size, generator=gen, dtype=dtype).to(device)
    fixed = torch.randn(s.batch, s.seq_len, s.dirs * s.hidden, generator=gen,
                        dtype=dtype).to(device)  # W: (B, T, dirs*H)
    x1 = x[:1].clone()  # (1, T, D): latency input
    opt = torch.optim.SGD(core.parameters(), lr=SGD_LR)

    def loss() -> torch.Tensor:
        return (core(x)[0] * fixed).sum()

    def forward() -> object:
        with torch.no_grad():
            return core(x)

    def fwd_bwd() -> None:
        # the same zero_grad as the training step, so the two differ by the update alone
        opt.zero_grad(set_to_none=True)
        loss().backward()

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()

    def latency_b1() -> object:
        with torch.no_grad():
            return core(x1)

    fns = [_with_cudnn(f, case.cudnn) for f in (forward, fwd_bwd, train_step, latency_b1)]
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    params = sum(p.numel() for p in core.parameters() if p.requires_grad)
    return Bench(*fns, params=params, sync=sync)
