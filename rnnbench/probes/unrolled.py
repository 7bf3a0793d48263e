"""Cell-by-cell recurrent computation and the cell-level theory the gradient probes rest on.

torch's fused nn.RNN / nn.LSTM / nn.GRU hand back only the stacked outputs, so the gradient of
`out[:, t]` is just the readout path. :func:`unrolled_forward` recomputes the same network one
step at a time from the core's own parameters and keeps every hidden state h_t as a separate
tensor of the autograd graph, so `torch.autograd.grad(loss, h_t)` is the TOTAL dL/dh_t: the
direct path, the next layer's path and the recurrent path through every later-visited step.

Also here: the spectra of the recurrent matrices and the saturation of the squashing units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}  # torch's row-block order
SAT = 0.99  # a squashing unit counts as saturated beyond this (tanh' = 1 - h^2 < 0.02 there)
ACTS = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda a: a}


def cell_kind(core: nn.Module, nonlinearity: str | None = None) -> str:
    """'lstm', 'gru', or 'rnn_<nonlinearity>' for Elman cores (nn.RNN and NumbaRNN alike)."""
    if isinstance(core, nn.LSTM):
        return "lstm"
    if isinstance(core, nn.GRU):
        return "gru"
    act = nonlinearity or getattr(core, "nonlinearity", None)
    if act not in ACTS:
        raise ValueError(f"cannot unroll {type(core).__name__} (nonlinearity {act!r})")
    return f"rnn_{act}"


def can_unroll(core: nn.Module) -> bool:
    """Whether unrolled_forward can recompute this core (torch's cells and the Numba RNN; not
    the state-free scans of rnnbench.models.minimal)."""
    try:
        cell_kind(core)
    except ValueError:
        return False
    return True


def direction_name(layer: int, direction: int) -> str:
    return f"l{layer}_{'bwd' if direction else 'fwd'}"


def _params(core: nn.Module, layer: int, direction: int):
    sfx = f"l{layer}" + ("_reverse" if direction else "")
    return [getattr(core, f"{n}_{sfx}", None)  # biases are None when bias=False
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def unrolled_forward(core: nn.Module, x: torch.Tensor, h0=None, *, nonlinearity: str | None = None,
                     trace: dict | None = None):
    """The core's forward pass, one cell at a time: x (B, T, D) -> (out, h_n, states).

    out (B, T, dirs*H) and h_n ((L*dirs, B, H), or (h_n, c_n) for LSTM) match the fused core.
    states[(layer, direction)] is a list of T tensors h_t (B, H), indexed by sequence position t
    for both directions; each is the very tensor the next step, the next layer and `out` use.
    `nonlinearity` overrides an Elman core's ('identity' gives the linear recurrence
    h_t = W_ih x_t + b + W_hh h_{t-1}). Inter-layer dropout is not applied (eval semantics).
    `trace`, if given, receives per (layer, direction) lists over t: 'squash' (B, H), the tanh-type
    activations (RNN: h_t; LSTM: tanh(c_t); GRU: the candidate n_t), 'gates' (B, k*H), the sigmoid
    gates (LSTM i, f, o; GRU r, z), and for LSTM 'c', the cell states c_t (in the graph).
    """
    kind = cell_kind(core, nonlinearity)
    if getattr(core, "proj_size", 0):
        raise ValueError("LSTM projections (proj_size > 0) are not supported")
    B, T, _ = x.shape
    dirs, L, H = (2 if core.bidirectional else 1), core.num_layers, core.hidden_size
    zeros = x.new_zeros(L * dirs, B, H)
    if kind == "lstm":
        h0, c0 = (zeros, zeros) if h0 is None else h0
    else:
        h0, c0 = (zeros if h0 is None else h0), None
    act = ACTS.get(kind.removeprefix("rnn_"))
    states, h_n, c_n = {}, [], []
    layer_in = x  # (B, T, D) for layer 0, (B, T, dirs*H) above
    for k in range(L):
        outs = []
        for d in range(dirs):
            w_ih, w_hh, b_ih, b_hh = _params(core, k, d)
            xw = F.linear(layer_in, w_ih, b_ih)  # (B, T, G*H): input projections of every step
            h, c = h0[k * dirs + d], (c0[k * dirs + d] if c0 is not None else None)
            hs, tr = [None] * T, {"squash": [None] * T, "gates": [None] * T, "c": [None] * T}
            for t in (range(T - 1, -1, -1) if d else range(T)):
                rec = F.linear(h, w_hh, b_hh)  # (B, G*H)
                if kind == "lstm":
                    i, f, g, o = (xw[:, t] + rec).chunk(4, dim=1)
                    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
                    c = f * c + i * torch.tanh(g)
                    sq = torch.tanh(c)
                    h = o * sq
                    tr["gates"][t], tr["c"][t] = torch.cat([i, f, o], dim=1), c
                elif kind == "gru":
                    xr, xz, xn = xw[:, t].chunk(3, dim=1)
                    hr, hz, hn = rec.chunk(3, dim=1)
                    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                    sq = torch.tanh(xn + r * hn)  # b_hn sits inside the reset product
                    h = (1 - z) * sq + z * h
                    tr["gates"][t] = torch.cat([r, z], dim=1)
                else:
                    h = sq = act(xw[:, t] + rec)
                hs[t], tr["squash"][t] = h, sq
            states[(k, d)] = hs
            if trace is not None:
                trace[(k, d)] = {n: v for n, v in tr.items() if v[0] is not None}
            outs.append(torch.stack(hs, dim=1))  # (B, T, H)
            h_n.append(h)  # the state after the direction's last step (t = T-1 fwd, t = 0 bwd)
            c_n.append(c)
        layer_in = torch.cat(outs, dim=2) if dirs == 2 else outs[0]
    h_n = torch.stack(h_n)  # (L*dirs, B, H)
    return layer_in, ((h_n, torch.stack(c_n)) if kind == "lstm" else h_n), states


def recurrent_spectra(core: nn.Module) -> dict[str, float | None]:
    """Largest singular value and spectral radius (largest |eigenvalue|) of each W_hh.

    Keys '<l0_fwd>.w_hh.sigma_max' / '.spectral_radius' for the whole matrix (for LSTM/GRU the
    stacked (G*H, H) matrix: its spectral radius is undefined, None), and for LSTM/GRU also
    '<l0_fwd>.w_hh_<gate>.sigma_max' / '.spectral_radius' for each (H, H) gate block.
    Dimensionless; computed in float64.
    """
    kind = cell_kind(core)
    out: dict[str, float | None] = {}
    dirs = 2 if core.bidirectional else 1
    for k in range(core.num_layers):
        for d in range(dirs):
            w = _params(core, k, d)[1].detach().cpu().double().numpy()  # (G*H, H)
            name, h = direction_name(k, d), w.shape[1]
            blocks = {"w_hh": w}
            for j, gate in enumerate(GATES.get(kind, ())):
                blocks[f"w_hh_{gate}"] = w[j * h:(j + 1) * h]
            for bname, m in blocks.items():
                out[f"{name}.{bname}.sigma_max"] = float(np.linalg.norm(m, 2))
                out[f"{name}.{bname}.spectral_radius"] = (
                    float(np.abs(np.linalg.eigvals(m)).max()) if m.shape[0] == m.shape[1] else None)
    return out


@torch.no_grad()
def saturation(core: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Fractions of units (over batch, steps and hidden units) whose derivative is ~zero.

    '<l0_fwd>.saturated_fraction': tanh RNN: |h_t| > 0.99; LSTM: |tanh(c_t)| > 0.99 (the squashed
    cell state); GRU: |n_t| > 0.99 (the candidate state); relu RNN: h_t == 0 (dead units).
    '<l0_fwd>.gates_saturated_fraction' (LSTM/GRU): sigmoid gates (LSTM i, f, o; GRU r, z) outside
    [0.01, 0.99]. Identity cells have no saturation: 0.
    """
    trace: dict = {}
    unrolled_forward(core, x, trace=trace)
    kind, out = cell_kind(core), {}
    for (k, d), tr in trace.items():
        sq = torch.stack(tr["squash"])  # (T, B, H)
        if kind == "rnn_relu":
            sat = sq == 0
        elif kind == "rnn_identity":
            sat = torch.zeros_like(sq, dtype=torch.bool)
        else:
            sat = sq.abs() > SAT
        out[f"{direction_name(k, d)}.saturated_fraction"] = float(sat.double().mean())
        if "gates" in tr:
            g = torch.stack(tr["gates"])  # (T, B, k*H)
            bad = (g < 1 - SAT) | (g > SAT)
            out[f"{direction_name(k, d)}.gates_saturated_fraction"] = float(bad.double().mean())
    return out


class UnrolledCore(nn.Module):
    """A torch core computed cell by cell (unrolled_forward) on the core's own parameters:
    the same function as the fused kernel, through the generic per-step autograd graph. The
    speed benchmark times it to compare cells under one implementation."""

    def __init__(self, core: nn.Module):
        super().__init__()
        self.core = core
        cell_kind(core)  # fails now for a core it cannot unroll

    def forward(self, x: torch.Tensor, h0=None):
        out, h_n, _ = unrolled_forward(self.core, x, h0)
        return out, h_n
