from __future__ import annotations

import pytest
import torch

from rnnbench import flops
from rnnbench.flops import Shape
from rnnbench.speed_bench import build_core


def test_rnn_forward_by_hand():
    # B=2, T=3, D=4, H=5: per step 2*2*4*5 (input) + 2*2*5*5 (recurrent) + 4*2*5 (elementwise)
    s = Shape("rnn", hidden=5, batch=2, seq_len=3, input_size=4)
    assert flops.forward_gemm_flops(s) == 3 * (80 + 100)
    assert flops.forward_flops(s) == 3 * (80 + 100 + 40)
    assert flops.backward_flops(s) == 2 * 3 * 180 + 3 * 40


def test_stacked_layer_input_is_dirs_times_hidden():
    s = Shape("gru", hidden=5, batch=1, seq_len=1, input_size=4, layers=2, bidirectional=True)
    # layer 0 reads D=4, layer 1 reads 2*H=10; two directions; G=3
    per_dir = 2 * 4 * 3 * 5 + 2 * 5 * 3 * 5 + 2 * 10 * 3 * 5 + 2 * 5 * 3 * 5
    assert flops.forward_gemm_flops(s) == 2 * per_dir


@pytest.mark.parametrize("h,b,t,d", [(8, 2, 3, 4), (32, 16, 50, 1), (64, 1, 7, 32)])
def test_gate_structure(h, b, t, d):
    gemm = {f: flops.forward_gemm_flops(Shape(f, h, b, t, d)) for f in flops.GATES}
    assert gemm["lstm"] * 3 == gemm["gru"] * 4
    assert gemm["gru"] == 3 * gemm["rnn"]
    assert gemm["numba_rnn"] == gemm["rnn"]


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_bidirectional_doubles_and_time_is_linear(family):
    one = Shape(family, 16, 4, 10, 8)
    bi = Shape(family, 16, 4, 10, 8, bidirectional=True)
    longer = Shape(family, 16, 4, 30, 8)
    assert flops.forward_flops(bi) == 2 * flops.forward_flops(one)
    assert flops.train_step_flops(longer) > flops.train_step_flops(one)
    assert flops.forward_flops(longer) == 3 * flops.forward_flops(one)


def test_train_step_adds_loss_and_update():
    s = Shape("lstm", 8, 2, 3, 4)
    extra = flops.train_step_flops(s) - flops.forward_flops(s) - flops.backward_flops(s)
    assert extra == 3 * 2 * 3 * 8 + 2 * flops.param_count(s)


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru", "numba_rnn"])
@pytest.mark.parametrize("layers,bi", [(1, False), (2, True)])
def test_param_count_matches_the_built_core(family, layers, bi):
    s = Shape(family, 6, 1, 1, 3, layers, bi)
    torch.manual_seed(0)
    core = build_core(s)
    assert flops.param_count(s) == sum(p.numel() for p in core.parameters())
