"""The model registry: parameter counts against the closed forms, readouts, initialisation."""

from __future__ import annotations

import pytest
import torch

from rnnbench.models.build import build_model
from rnnbench.models.cost import Core, core_params
from rnnbench.models.families import GRUConfig, LSTMConfig, RNNConfig, param_count
from rnnbench.tasks.base import TaskSpec

MANY_TO_ONE = TaskSpec(name="t", shape="many_to_one", input_size=3, output_size=2, loss="mse",
                       readout="last", metric="mse", higher_is_better=False,
                       solved_threshold=0.1, definition="test")
MANY_TO_MANY = TaskSpec(name="t", shape="many_to_many", input_size=5, output_size=4,
                        loss="xent", readout="all", metric="accuracy", higher_is_better=True,
                        solved_threshold=0.9, definition="test")
SEQ2SEQ = TaskSpec(name="t", shape="seq2seq", input_size=5, output_size=4, loss="xent",
                   readout="all", metric="accuracy", higher_is_better=True,
                   solved_threshold=0.9, definition="test")


def configs():
    for layers in (1, 2, 3):
        for bi in (False, True):
            for h in (1, 7, 16):
                yield RNNConfig(family="rnn", hidden_size=h, num_layers=layers, bidirectional=bi)
                yield LSTMConfig(family="lstm", hidden_size=h, num_layers=layers,
                                 bidirectional=bi)
                yield GRUConfig(family="gru", hidden_size=h, num_layers=layers, bidirectional=bi)


@pytest.mark.parametrize("cfg", list(configs()), ids=lambda c: c.__repr__()[:60])
def test_param_count_matches_closed_form_and_torch(cfg):
    model = build_model(cfg, MANY_TO_ONE)
    assert sum(p.numel() for p in model.parameters()) == param_count(cfg, MANY_TO_ONE)


def test_closed_form_by_hand():
    # RNN: h(i + h) + 2h per layer and direction; GRU 3x, LSTM 4x
    assert core_params(Core("rnn", 1, 64)) == 64 * 65 + 128
    assert core_params(Core("gru", 1, 64)) == 3 * (64 * 65 + 128)
    assert core_params(Core("lstm", 1, 64)) == 4 * (64 * 65 + 128)
    # the lecture model: nn.RNN(1, 64, num_layers=2) -> layer 2 takes 64 inputs
    assert core_params(Core("rnn", 1, 64, 2)) == (64 * 65 + 128) + (64 * 128 + 128)
    # bidirectional layer 2 reads 2h features
    assert core_params(Core("rnn", 3, 4, 2, True)) == 2 * (4 * 7 + 8) + 2 * (4 * 12 + 8)


@pytest.mark.parametrize("cfg", [RNNConfig(family="rnn", hidden_size=6, bidirectional=True),
                                 LSTMConfig(family="lstm", hidden_size=6, num_layers=2),
                                 GRUConfig(family="gru", hidden_size=6)])
def test_readout_shapes(cfg):
    x = torch.randn(4, 9, 3)
    assert build_model(cfg, MANY_TO_ONE)(x).shape == (4, 2)
    x = torch.randn(4, 9, 5)
    assert build_model(cfg, MANY_TO_MANY)(x).shape == (4, 9, 4)


def test_bidirectional_last_readout_uses_each_directions_final_state():
    torch.manual_seed(0)
    model = build_model(GRUConfig(family="gru", hidden_size=5, bidirectional=True), MANY_TO_ONE)
    x = torch.randn(2, 7, 3)
    out, _ = model.core(x)
    expected = model.head(torch.cat([out[:, -1, :5], out[:, 0, 5:]], dim=-1))
    torch.testing.assert_close(model(x), expected)


def test_lstm_forget_bias_is_set_and_recorded():
    model = build_model(LSTMConfig(family="lstm", hidden_size=4, num_layers=2, forget_bias=1.0),
                        MANY_TO_ONE)
    for layer in range(2):
        b_ih = getattr(model.core, f"bias_ih_l{layer}")
        b_hh = getattr(model.core, f"bias_hh_l{layer}")
        torch.testing.assert_close((b_ih + b_hh)[4:8], torch.ones(4))
    torch.manual_seed(0)
    default = build_model(LSTMConfig(family="lstm", hidden_size=4, forget_bias=None),
                          MANY_TO_ONE)
    assert not torch.allclose((default.core.bias_ih_l0 + default.core.bias_hh_l0)[4:8],
                              torch.ones(4))


def test_same_seed_same_weights():
    cfg = LSTMConfig(family="lstm", hidden_size=8)
    torch.manual_seed(3)
    a = build_model(cfg, MANY_TO_ONE).state_dict()
    torch.manual_seed(3)
    b = build_model(cfg, MANY_TO_ONE).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_recurrent_models_refuse_seq2seq_tasks():
    with pytest.raises(ValueError, match="does not serve seq2seq"):
        build_model(GRUConfig(family="gru"), SEQ2SEQ)


@pytest.mark.parametrize("family", ["rnn", "numba_rnn"])
def test_scaled_orthogonal_recurrent_init_sets_every_singular_value(family):
    from rnnbench.models.families import NumbaRNNConfig

    cls = RNNConfig if family == "rnn" else NumbaRNNConfig
    model = build_model(cls(family=family, hidden_size=12, num_layers=2, bidirectional=True,
                            w_hh_scale=1.5), MANY_TO_ONE)
    names = [n for n, _ in model.core.named_parameters() if n.startswith("weight_hh")]
    assert len(names) == 4
    for name in names:
        s = torch.linalg.svdvals(getattr(model.core, name).detach())
        torch.testing.assert_close(s, torch.full((12,), 1.5))
