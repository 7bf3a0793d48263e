"""Analytic flop counts of the recurrent cores that rnnbench times.

Conventions (stated, not measured):
- a multiply-add is 2 flops; an add, a multiply or a nonlinearity (tanh, sigmoid) is 1 flop
  each, whatever its real cost in instructions;
- per step, layer and direction, with G gates (RNN 1, GRU 3, LSTM 4) and D_in the layer's input
  width (D for layer 0, dirs*H above): input projection 2*B*D_in*G*H, recurrent projection
  2*B*H*G*H, plus the elementwise terms per (B, H) element listed in ELEMENTWISE;
- backward = 2 x the forward GEMM flops (one GEMM for the input or state gradient, one for the
  weight gradient) + the forward elementwise flops once more (their derivatives);
- a training step = forward + backward + the loss (out * fixed).sum() (2 flops per output
  element forward, 1 backward) + plain SGD (p -= lr * g: 2 flops per parameter).
"""

from __future__ import annotations

from dataclasses import dataclass

GATES = {"rnn": 1, "numba_rnn": 1, "gru": 3, "lstm": 4}

# Elementwise flops per (batch, hidden) element and step, forward:
#   rnn:  x-proj + h-proj + b_ih + b_hh (3 adds), tanh (1)                           = 4
#   gru:  r, z: 3 adds each (6); n: + b_in, + b_hn, r *, + (4); 2 sigmoid + tanh (3);
#         h = (1 - z) * n + z * h_prev (4)                                             = 17
#   lstm: 4 gates x 3 adds (12); 3 sigmoid + tanh (4); c = f*c + i*g (3); h = o*tanh(c) (2) = 21
ELEMENTWISE = {"rnn": 4, "numba_rnn": 4, "gru": 17, "lstm": 21}


@dataclass(frozen=True)
class Shape:
    family: str  # one of GATES
    hidden: int  # H
    batch: int  # B
    seq_len: int  # T
    input_size: int  # D
    layers: int = 1
    bidirectional: bool = False

    @property
    def dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def layer_inputs(self) -> list[int]:
        """D_in of each layer: D, then dirs*H for the stacked layers."""
        return [self.input_size] + [self.dirs * self.hidden] * (self.layers - 1)


def forward_gemm_flops(s: Shape) -> int:
    """Input and recurrent projections of every step, layer and direction."""
    g, h = GATES[s.family], s.hidden
    per_dir = sum(2 * s.batch * d_in * g * h + 2 * s.batch * h * g * h for d_in in s.layer_inputs())
    return per_dir * s.dirs * s.seq_len


def forward_elementwise_flops(s: Shape) -> int:
    return ELEMENTWISE[s.family] * s.batch * s.hidden * s.seq_len * s.layers * s.dirs


def forward_flops(s: Shape) -> int:
    return forward_gemm_flops(s) + forward_elementwise_flops(s)


def backward_flops(s: Shape) -> int:
    return 2 * forward_gemm_flops(s) + forward_elementwise_flops(s)


def param_count(s: Shape) -> int:
    """Per layer and direction G*(H*(D_in + H) + 2H), as torch.nn.RNN/LSTM/GRU with biases."""
    g, h = GATES[s.family], s.hidden
    return s.dirs * sum(g * (h * (d_in + h) + 2 * h) for d_in in s.layer_inputs())


def loss_flops(s: Shape) -> int:
    """(out * fixed).sum(): a multiply and an add per output element forward, a multiply back."""
    return 3 * s.batch * s.seq_len * s.dirs * s.hidden


def train_step_flops(s: Shape) -> int:
    return forward_flops(s) + backward_flops(s) + loss_flops(s) + 2 * param_count(s)


def fwd_bwd_flops(s: Shape) -> int:
    return forward_flops(s) + backward_flops(s) + loss_flops(s)
