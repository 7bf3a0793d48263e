"""minGRU and minLSTM: gates that read x_t only, so the recurrence is a linear scan.

Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024), "Were RNNs All We Needed?",
arXiv:2410.01201, drop h_{t-1} from the gates and the candidate of the GRU and the LSTM:

- minGRU:  z_t = sigmoid(W_z x_t + b_z), h~_t = g(W_h x_t + b_h),
           h_t = (1 - z_t) * h_{t-1} + z_t * h~_t
- minLSTM: f_t = sigmoid(W_f x_t + b_f), i_t = sigmoid(W_i x_t + b_i), h~_t = g(W_h x_t + b_h),
           f'_t = f_t / (f_t + i_t), i'_t = i_t / (f_t + i_t), h_t = f'_t * h_{t-1} + i'_t * h~_t

Both are h_t = a_t * h_{t-1} + b_t with a_t, b_t known for every t before the recurrence runs,
so h_t = sum_{k <= t} (prod_{k < j <= t} a_j) b_k (+ prod_{j <= t} a_j h_0). With a, b > 0
that sum is computed in log space (the paper's parallel mode, after Heinsen 2023):
log h_t = A_t + logcumsumexp_k(log b_k - A_k), A_t = sum_{j <= t} log a_j: a cumulative sum
and a cumulative log-sum-exp, O(log T) depth on parallel hardware. g(x) = x + 0.5 for x >= 0,
sigmoid(x) below, keeps h~_t (so b_t and every h_t) positive, which the log needs; the
sequential mode applies the same g, so both modes compute the same function.

Rounding: A_t grows in magnitude with t, so in float32 the scan's relative error against a
float64 loop grows with T (measured at H = 64: about 2e-5 at T = 256, 4e-4 at T = 4,096).

mode "sequential": the coefficients for all t at once (they do not depend on the state), then a
plain loop h = a_t * h + b_t. mode "parallel": the log-space scan above. mode "numba": the
plain loop as one compiled kernel, forward and backward (rnnbench.kernels.scan; CPU only): on a
CPU, where torch's logcumsumexp costs tens of ns per element and a loop of torch ops pays a
dispatch per step, the work-optimal sequential scan in compiled code is the fast one.

Stacking (num_layers) feeds layer l's outputs to layer l + 1, as torch.nn.GRU does; the paper's
deeper models add residual connections and normalisation around each layer, not done here.
The core has nn.GRU's calling convention (batch_first): core(x (B, T, D), h0 (L*dirs, B, H))
-> (out (B, T, dirs*H), h_n (L*dirs, B, H)); there is no separate cell state.
"""

from __future__ import annotations

import time
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

BLOCKS = {"mingru": 2, "minlstm": 3}  # row blocks of each layer's one input projection
Mode = Literal["sequential", "parallel", "numba"]
MODES = ("sequential", "parallel", "numba")


def g(x: torch.Tensor) -> torch.Tensor:
    """The paper's positive activation: x + 0.5 for x >= 0, sigmoid(x) below (continuous)."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: torch.Tensor) -> torch.Tensor:
    """log g(x), stable on both sides: log(x + 0.5) for x >= 0, -softplus(-x) below."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def coefficients(cell: str, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) of h_t = a_t h_{t-1} + b_t from the projection pre (B, T, blocks*H)."""
    if cell == "mingru":
        k, h = pre.chunk(2, dim=-1)
        z = torch.sigmoid(k)
        return 1 - z, z * g(h)
    kf, ki, h = pre.chunk(3, dim=-1)
    f, i = torch.sigmoid(kf), torch.sigmoid(ki)
    return f / (f + i), i / (f + i) * g(h)


def log_coefficients(cell: str, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log a, log b) of the same recurrence, computed without taking a log of a rounded
    probability: log(1 - sigmoid(k)) = -softplus(k), log sigmoid(k) = -softplus(-k), and for
    minLSTM log f' = -softplus(d), log i' = -softplus(-d) with d = log i - log f."""
    if cell == "mingru":
        k, h = pre.chunk(2, dim=-1)
        return -F.softplus(k), -F.softplus(-k) + log_g(h)
    kf, ki, h = pre.chunk(3, dim=-1)
    d = F.softplus(-kf) - F.softplus(-ki)  # log sigmoid(ki) - log sigmoid(kf)
    return -F.softplus(d), -F.softplus(-d) + log_g(h)


def sequential_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """h (B, T, H) of h_t = a_t h_{t-1} + b_t, one step at a time; h_{-1} = h0 or 0."""
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    out = []
    # unbind, not a[:, t]: each indexing op's backward would write a full-size gradient (O(T^2))
    for a_t, b_t in zip(a.unbind(1), b.unbind(1), strict=True):
        h = a_t * h + b_t
        out.append(h)
    return torch.stack(out, dim=1)


def log_scan(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """The same h from log a, log b (B, T, H) by a cumulative sum and logcumsumexp; h0 must be
    positive (every state of these cells is)."""
    a_star = torch.cumsum(log_a, dim=1)  # A_t
    terms = log_b - a_star
    if h0 is not None:  # h0 enters as a term with A = 0 before step 0
        floor = torch.finfo(h0.dtype).tiny
        terms = torch.cat([torch.log(h0.clamp_min(floor)).unsqueeze(1), terms], dim=1)
        return torch.exp(a_star + torch.logcumsumexp(terms, dim=1)[:, 1:])
    return torch.exp(a_star + torch.logcumsumexp(terms, dim=1))


class _NumbaScan(torch.autograd.Function):
    """sequential_scan's function through rnnbench.kernels.scan (CPU tensors)."""

    @staticmethod
    def forward(ctx, a, b, h0):
        from rnnbench.kernels.scan import scan_forward

        a, b, h0 = (v.detach().contiguous() for v in (a, b, h0))
        out = torch.empty_like(b)
        scan_forward(a.numpy(), b.numpy(), h0.numpy(), out.numpy())
        ctx.save_for_backward(a, h0, out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        from rnnbench.kernels.scan import scan_backward

        a, h0, out = ctx.saved_tensors
        grad_a, grad_b, grad_h0 = torch.empty_like(a), torch.empty_like(a), torch.empty_like(h0)
        scan_backward(a.numpy(), h0.numpy(), out.numpy(), grad_out.contiguous().numpy(),
                      torch.zeros_like(h0).numpy(), grad_a.numpy(), grad_b.numpy(),
                      grad_h0.numpy())
        return grad_a, grad_b, grad_h0


def numba_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """sequential_scan computed by the Numba kernel; CPU tensors only."""
    if a.device.type != "cpu":
        raise ValueError(f"mode 'numba' runs on the CPU only (the input is on {a.device})")
    return _NumbaScan.apply(a, b, torch.zeros_like(b[:, 0]) if h0 is None else h0)


class MinRNN(nn.Module):
    """A stack of minGRU or minLSTM layers, each direction with one nn.Linear(D_in, blocks*H)
    (blocks: minGRU z, h~; minLSTM f, i, h~)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, mode: Mode = "parallel"):
        super().__init__()
        if cell not in BLOCKS:
            raise ValueError(f"cell {cell!r}: not one of {', '.join(BLOCKS)}")
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: not one of {', '.join(MODES)}")
        self.cell, self.mode = cell, mode
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        dirs = 2 if bidirectional else 1
        self.proj = nn.ModuleList(
            nn.Linear(input_size if layer == 0 else dirs * hidden_size, BLOCKS[cell] * hidden_size)
            for layer in range(num_layers) for _ in range(dirs))

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def layer(self, index: int, x: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
        """One layer and direction on x (B, T, D_in) read in its own time order."""
        pre = self.proj[index](x)
        if self.mode == "sequential":
            return sequential_scan(*coefficients(self.cell, pre), h0)
        if self.mode == "numba":
            return numba_scan(*coefficients(self.cell, pre), h0)
        return log_scan(*log_coefficients(self.cell, pre), h0)

    def precompile(self) -> float:
        """Compile the Numba scan for this module's dtype (or load it from Numba's cache) in
        mode "numba"; the seconds it took, 0 in the other modes."""
        if self.mode != "numba":
            return 0.0
        t0 = time.perf_counter()
        p = next(self.parameters())
        x = torch.zeros(1, 2, self.input_size, dtype=p.dtype, requires_grad=True)
        self.forward(x)[0].sum().backward()
        self.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        dirs, finals = self.directions, []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                i = layer * dirs + d
                seq = x.flip(1) if d else x  # the backward direction reads from t = T-1 down
                h = self.layer(i, seq, None if h0 is None else h0[i])
                finals.append(h[:, -1])  # backward: its state after reading back to t = 0
                outs.append(h.flip(1) if d else h)
            x = torch.cat(outs, dim=-1) if dirs > 1 else outs[0]
        return x, torch.stack(finals, dim=0)
