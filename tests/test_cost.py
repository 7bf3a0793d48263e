"""Closed-form flop and parameter counts (rnnbench.models.cost) by hand and against torch."""

from __future__ import annotations

import pytest

from rnnbench.models import cost
from rnnbench.models.cost import Core
from rnnbench.speed.bench import Case, make_bench


def test_rnn_forward_by_hand():
    # B=2, T=3, D=4, H=5: per step 2*2*4*5 (input) + 2*2*5*5 (recurrent) + 4*2*5 (elementwise)
    c = Core("rnn", input_size=4, hidden=5)
    assert cost.forward_gemm_flops(c, 2, 3) == 3 * (80 + 100)
    assert cost.core_forward_flops(c, 2, 3) == 3 * (80 + 100 + 40)
    assert cost.core_backward_flops(c, 2, 3) == 2 * 3 * 180 + 3 * 40


def test_stacked_layer_input_is_dirs_times_hidden():
    c = Core("gru", input_size=4, hidden=5, layers=2, bidirectional=True)
    # layer 0 reads D=4, layer 1 reads 2*H=10; two directions; G=3
    per_dir = 2 * 4 * 3 * 5 + 2 * 5 * 3 * 5 + 2 * 10 * 3 * 5 + 2 * 5 * 3 * 5
    assert cost.forward_gemm_flops(c, 1, 1) == 2 * per_dir


@pytest.mark.parametrize("h,b,t,d", [(8, 2, 3, 4), (32, 16, 50, 1), (64, 1, 7, 32)])
def test_gate_structure(h, b, t, d):
    gemm = {cell: cost.forward_gemm_flops(Core(cell, d, h), b, t) for cell in cost.CELL_GATES}
    assert gemm["lstm"] * 3 == gemm["gru"] * 4
    assert gemm["gru"] == 3 * gemm["rnn"]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_bidirectional_doubles_and_time_is_linear(cell):
    one, bi = Core(cell, 8, 16), Core(cell, 8, 16, bidirectional=True)
    assert cost.core_forward_flops(bi, 4, 10) == 2 * cost.core_forward_flops(one, 4, 10)
    assert cost.core_forward_flops(one, 4, 30) == 3 * cost.core_forward_flops(one, 4, 10)


def test_train_step_counts_head_loss_clip_and_update_by_hand():
    c = Core("lstm", 4, 8)  # B=2, T=3, last-step readout of 1 output, Adam
    n = cost.core_params(c) + 8 + 1
    f = cost.train_step_flops(c, 2, 3, 1, 1, "adam", n)
    assert f.head == 3 * (2 * 2 * 8 * 1)  # forward 2*rows*H*O, backward twice that
    assert f.loss == 5 * 2  # MSE: 3 flops forward, 2 backward per predicted element
    assert f.update == (3 + 13) * n  # norm (2) and clip (1) per parameter, Adam 13
    assert f.total == f.core_forward + f.core_backward + f.head + f.loss + f.update
    assert cost.train_step_flops(c, 2, 3, 1, 1, "sgd", n).update == (3 + 2) * n


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru", "numba_rnn"])
@pytest.mark.parametrize("layers,bi", [(1, False), (2, True)])
def test_param_count_matches_the_built_model(family, layers, bi):
    case = Case(family, hidden=6, batch=1, seq_len=2, input_size=3, layers=layers,
                bidirectional=bi)
    bench = make_bench(case)
    head = case.core().dirs * 6 + 1  # nn.Linear(dirs*H, 1)
    assert cost.core_params(case.core()) + head == bench.params
