"""Recurrent classifiers/regressors: a recurrent core plus a linear readout per task shape.

The core is anything with torch.nn.RNN's calling convention (batch_first=True):
core(x (B, T, D)) -> (out (B, T, dirs*H), h_n), where h_n is (L*dirs, B, H), or a tuple whose
first element is, for LSTM. nn.RNN, nn.LSTM, nn.GRU and the Numba RNN all fit.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class RecurrentNet(nn.Module):
    """A core and a linear head (rnnbench.models.contract.SequenceModel). `stateful`: each call
    starts from the final state of the previous call (detached, so gradients stop at the chunk
    boundary: truncated BPTT) until reset_state()."""

    takes_targets = False

    def __init__(self, core: nn.Module, hidden_size: int, bidirectional: bool, output_size: int,
                 readout: Literal["last", "all"], stateful: bool = False):
        super().__init__()
        self.core = core
        self.directions = 2 if bidirectional else 1
        self.readout = readout
        self.head = nn.Linear(self.directions * hidden_size, output_size)
        self.stateful = stateful
        self.state = None  # the carried state: h_n, or (h_n, c_n) for LSTM

    def reset_state(self) -> None:
        self.state = None

    def precompile(self) -> float:
        """The core's JIT compile (the Numba RNN), outside any timed step; 0 for torch cores."""
        return self.core.precompile() if hasattr(self.core, "precompile") else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stateful:
            out, h_n = self.core(x) if self.state is None else self.core(x, self.state)
            self.state = tuple(h.detach() for h in h_n) if isinstance(h_n, tuple) \
                else h_n.detach()
        else:
            out, h_n = self.core(x)
        return self.read_out(out, h_n)

    def read_out(self, out: torch.Tensor, h_n) -> torch.Tensor:
        """Predictions from the core's outputs: out (B, T, dirs*H) and h_n (or (h_n, c_n))."""
        if self.readout == "all":
            return self.head(out)  # (B, T, output)
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # LSTM: (h_n, c_n)
        # Final state of the top layer in each direction: the forward direction after step T-1,
        # the backward one after reading back to step 0 (out[:, -1] would give it after 1 step).
        last = torch.cat(list(h_n[-self.directions:]), dim=-1)  # (B, dirs*H)
        return self.head(last)  # (B, output)


def lstm_forget_bias_(lstm: nn.LSTM, value: float) -> None:
    """Set each forget gate's total bias b_ih + b_hh to `value` (torch gate order: i, f, g, o)."""
    h = lstm.hidden_size
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            if name.startswith("bias_ih"):
                p[h:2 * h].fill_(value)
            elif name.startswith("bias_hh"):
                p[h:2 * h].zero_()


def scaled_orthogonal_w_hh_(core: nn.Module, scale: float) -> None:
    """Replace every weight_hh_l* with scale x a random orthogonal matrix (torch's RNG), so all
    its singular values equal `scale`. Elman cores only: W_hh is one (H, H) block there."""
    with torch.no_grad():
        for name, p in core.named_parameters():
            if name.startswith("weight_hh"):
                nn.init.orthogonal_(p)
                p.mul_(scale)

