"""Closed-form parameter and flop counts of the recurrent cells, written once for the registry
(rnnbench/models/families.py), the speed benchmark and the tests. Imports nothing heavy.

Flop conventions (stated, not measured):
- a multiply-add is 2 flops; an add, a multiply or a nonlinearity (tanh, sigmoid, sqrt) is 1 flop
  each, whatever its real cost in instructions;
- per step, layer and direction, with G gate blocks (RNN 1, GRU 3, LSTM 4, minGRU 2, minLSTM
  3) and D_in the layer's input width (D for layer 0, dirs*H above): input projection
  2*B*D_in*G*H, recurrent projection 2*B*H*G*H (none for minGRU and minLSTM), plus
  ELEMENTWISE[cell] flops per (B, H) element;
- backward = 2 x the forward GEMM flops (one GEMM for the input or state gradient, one for the
  weight gradient) + the forward elementwise flops once more (their derivatives);
- a training step (rnnbench.training.step.train_step) = the core forward and backward + the
  linear head forward (2 flops per weight per row) and backward (twice that) + the loss (MSE: 3
  flops per predicted element forward, 2 backward) + the global gradient norm (2 per parameter)
  and clipping by norm (1 per parameter) + the optimiser update (OPTIMIZER_FLOPS per parameter).
"""

from __future__ import annotations

from dataclasses import dataclass

CELL_GATES = {"rnn": 1, "gru": 3, "lstm": 4, "mingru": 2, "minlstm": 3}  # blocks in W_ih / W_hh
# Cells whose gates and candidate read only x_t (rnnbench.models.minimal): no W_hh and one bias
# per block, so the recurrence h_t = a_t h_{t-1} + b_t is a linear scan. Each -> the classic cell
# it is the state-free form of (Feng et al. 2024).
STATE_FREE = {"mingru": "gru", "minlstm": "lstm"}

# Elementwise flops per (batch, hidden) element and step, forward:
#   rnn:  x-proj + h-proj + b_ih + b_hh (3 adds), tanh (1)                           = 4
#   gru:  r, z: 3 adds each (6); n: + b_in, + b_hn, r *, + (4); 2 sigmoid + tanh (3);
#         h = (1 - z) * n + z * h_prev (4)                                             = 17
#   lstm: 4 gates x 3 adds (12); 3 sigmoid + tanh (4); c = f*c + i*g (3); h = o*tanh(c) (2) = 21
#   mingru: 2 bias adds (2); sigmoid z (1); g(h~): compare + add or sigmoid (2);
#         h = (1 - z) * h_prev + z * h~ (4)                                            = 9
#   minlstm: 3 bias adds (3); 2 sigmoids (2); g(h~) (2); f + i (1), f', i' (2 divides);
#         h = f' * h_prev + i' * h~ (3)                                                = 13
#   (the sequential form, whichever mode runs: the log-space scan does more elementwise work,
#   softplus, log, exp and the cumulative sums, for its O(log T) depth)
ELEMENTWISE = {"rnn": 4, "gru": 17, "lstm": 21, "mingru": 9, "minlstm": 13}

# Flops per parameter of one update, torch's single-tensor algorithms (torch.optim docs):
#   sgd: p -= lr * g (2); adam: m lerp (3), v = b2 v + (1 - b2) g^2 (4), sqrt(v)/sqrt(bc2) + eps
#   (3), p -= lr/bc1 * m / denom (3); rmsprop: v = a v + (1 - a) g^2 (4), sqrt + eps (2),
#   p -= lr * g / denom (3)
OPTIMIZER_FLOPS = {"sgd": 2, "adam": 13, "rmsprop": 9}


@dataclass(frozen=True)
class Core:
    """The shape of a recurrent core: cell kind and sizes (batch and length excluded)."""

    cell: str  # one of CELL_GATES
    input_size: int  # D
    hidden: int  # H, per direction
    layers: int = 1
    bidirectional: bool = False

    @property
    def dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def layer_inputs(self) -> list[int]:
        """D_in of each layer: D, then dirs*H for the stacked layers."""
        return [self.input_size] + [self.dirs * self.hidden] * (self.layers - 1)


def core_params(c: Core) -> int:
    """Per layer and direction G*(H*(D_in + H) + 2H): torch.nn.RNN/LSTM/GRU with both biases;
    G*(H*D_in + H) for the state-free cells (one nn.Linear(D_in, G*H))."""
    g, h = CELL_GATES[c.cell], c.hidden
    if c.cell in STATE_FREE:
        return c.dirs * sum(g * (h * d_in + h) for d_in in c.layer_inputs())
    return c.dirs * sum(g * (h * (d_in + h) + 2 * h) for d_in in c.layer_inputs())


def forward_gemm_flops(c: Core, batch: int, seq_len: int) -> int:
    """Input and recurrent projections of every step, layer and direction (state-free cells
    have no recurrent projection)."""
    g, h = CELL_GATES[c.cell], c.hidden
    rec = 0 if c.cell in STATE_FREE else 2 * batch * h * g * h
    per_dir = sum(2 * batch * d_in * g * h + rec for d_in in c.layer_inputs())
    return per_dir * c.dirs * seq_len


def forward_elementwise_flops(c: Core, batch: int, seq_len: int) -> int:
    return ELEMENTWISE[c.cell] * batch * c.hidden * seq_len * c.layers * c.dirs


def core_forward_flops(c: Core, batch: int, seq_len: int) -> int:
    return forward_gemm_flops(c, batch, seq_len) + forward_elementwise_flops(c, batch, seq_len)


def core_backward_flops(c: Core, batch: int, seq_len: int) -> int:
    return 2 * forward_gemm_flops(c, batch, seq_len) + forward_elementwise_flops(c, batch, seq_len)


@dataclass(frozen=True)
class StepFlops:
    """Flops of one training step of a core + linear head, by part."""

    core_forward: int
    core_backward: int
    head: int  # forward and backward
    loss: int  # forward and backward
    update: int  # gradient norm, clipping and the optimiser

    @property
    def forward(self) -> int:
        return self.core_forward

    @property
    def total(self) -> int:
        return self.core_forward + self.core_backward + self.head + self.loss + self.update


def train_step_flops(c: Core, batch: int, seq_len: int, output_size: int, readout_steps: int,
                     optimizer: str, n_params: int) -> StepFlops:
    """One step of train_step on a RecurrentNet: `readout_steps` positions read by the head
    (1 for a last-step readout, T for every step), MSE loss, clipping by norm, `optimizer`."""
    rows = batch * readout_steps
    head_fwd = 2 * rows * c.dirs * c.hidden * output_size
    return StepFlops(
        core_forward=core_forward_flops(c, batch, seq_len),
        core_backward=core_backward_flops(c, batch, seq_len),
        head=3 * head_fwd, loss=5 * rows * output_size,
        update=(3 + OPTIMIZER_FLOPS[optimizer]) * n_params)
