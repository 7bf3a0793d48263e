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

mode "sequential": the coefficients for all t at once (they do not depend on the state), then a
plain loop h = a_t * h + b_t. mode "parallel": the log-space scan above.

Stacking (num_layers) feeds layer l's outputs to layer l + 1, as torch.nn.GRU does; the paper's
deeper models add residual connections and normalisation around each layer, not done here.
The core has nn.GRU's calling convention (batch_first): core(x (B, T, D), h0 (L*dirs, B, H))
-> (out (B, T, dirs*H), h_n (L*dirs, B, H)); there is no separate cell state.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

BLOCKS = {"mingru": 2, "minlstm": 3}  # row blocks of each layer's one input projection
Mode = Literal["sequential", "parallel"]


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
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
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


class MinRNN(nn.Module):
    """A stack of minGRU or minLSTM layers, each direction with one nn.Linear(D_in, blocks*H)
    (blocks: minGRU z, h~; minLSTM f, i, h~)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, mode: Mode = "parallel"):
        super().__init__()
        if cell not in BLOCKS:
            raise ValueError(f"cell {cell!r}: not one of {', '.join(BLOCKS)}")
        if mode not in ("sequential", "parallel"):
            raise ValueError(f"mode {mode!r}: not 'sequential' or 'parallel'")
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
        return log_scan(*log_coefficients(self.cell, pre), h0)

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
