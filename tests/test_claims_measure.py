"""The measurements behind the claims of claims_more.py: longer copies of a task (at_length),
memory spans, the one-to-many task, keep-gate statistics, the evaluations every run records
beyond its test split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnbench.models.build import build_model
from rnnbench.models.families import FAMILIES, serves
from rnnbench.probes.gates import keep_gate_stats
from rnnbench.tasks.adding import Adding, AddingConfig
from rnnbench.tasks.base import LENGTH_FACTORS
from rnnbench.tasks.copy import N_COPY, Copy, CopyConfig
from rnnbench.tasks.draw_digits import DrawDigits, DrawDigitsConfig
from rnnbench.tasks.registry import get_task
from rnnbench.training.evaluate import length_points, memory_gates, train_split_metrics
from rnnbench.training.fit import fit
from rnnbench.training.schema import TrainConfig


# ---------------------------------------------------------------- tasks
def test_at_length_multiplies_each_tasks_length_and_validates():
    longer = Adding().at_length(AddingConfig(seq_len=25), 4)
    assert longer.seq_len == 100 and longer.n_test == 1000 and longer.n_train == 1
    assert Copy().at_length(CopyConfig(delay=10), 2).delay == 20
    rev = get_task("reverse")
    longer = rev.at_length(rev.Config(min_len=3, max_len=15), 2)
    assert (longer.min_len, longer.max_len) == (30, 30)  # lengths never seen in training
    assert get_task("sine").at_length(get_task("sine").Config(), 2) is None
    assert get_task("digits").length_key is None


def test_memory_spans_point_at_the_first_marker_and_the_recall():
    cfg = AddingConfig(seq_len=20, n_train=8, n_val=8, n_test=8)
    split = Adding().generate(cfg, 0)["test"]
    spans = Adding().memory_spans(cfg, split)
    first = np.array([np.flatnonzero(m)[0] for m in split["x"][:, :, 1]])
    assert (spans[:, 0] == first).all() and (spans[:, 1] == 19).all() and (first < 10).all()
    cc = CopyConfig(delay=7, n_train=4, n_val=4, n_test=4)
    cs = Copy().generate(cc, 0)["test"]
    s, e = Copy().memory_spans(cc, cs)[0]
    assert cs["x"][0, s + 1:e].max() == 9 and (cs["y"][0, e:] > 0).all()  # the delimiter
    assert (cs["y"][0, :e] == 0).all() and s == N_COPY - 1


def test_draw_digits_feeds_the_class_first_or_every_step_and_bounds_its_baseline():
    task = DrawDigits()
    first = task.generate(DrawDigitsConfig(), 0)
    every = task.generate(DrawDigitsConfig(feed="every"), 0)
    x, y, label = first["train"]["x"], first["train"]["y"], first["train"]["label"]
    assert x.shape == (len(y), 8, 10) and y.shape == (len(y), 8, 8)
    assert (x[:, 0].argmax(1) == label).all() and x[:, 1:].sum() == 0
    assert (every["train"]["x"].argmax(2) == label[:, None]).all()
    np.testing.assert_array_equal(every["train"]["y"], y)  # same images, same split
    base = task.baseline(DrawDigitsConfig(), first)
    assert 0.04 < base["mse_class_mean"] < base["mse"] < 0.09
    assert task.spec(DrawDigitsConfig()).shape == "one_to_many"


def test_every_recurrent_family_serves_one_to_many_and_no_encoder_decoder_does():
    spec = DrawDigits().spec(DrawDigitsConfig())
    for name, fam in FAMILIES.items():
        cfg = fam.config(family=name)
        assert serves(cfg, spec) == (fam.builder == "recurrent_net"), name


# ---------------------------------------------------------------- keep gates
def lstm_with(forget_bias: float, input_bias: float, hidden=4) -> torch.nn.LSTM:
    core = torch.nn.LSTM(2, hidden, batch_first=True)
    with torch.no_grad():
        for name, p in core.named_parameters():
            p.zero_()
            if name == "bias_ih_l0":  # torch's gate order: i, f, g, o
                p[:hidden].fill_(input_bias)
                p[hidden:2 * hidden].fill_(forget_bias)
    return core


def test_keep_gate_stats_see_cells_that_keep_and_cells_that_forget():
    x, spans = torch.randn(6, 12, 2), np.tile([2, 11], (6, 1))
    keep = keep_gate_stats(lstm_with(12.0, -12.0), x, spans)["layers"]["l0_fwd"]
    assert keep["keeping_fraction"] == keep["near_one_fraction"] == 1.0
    assert keep["keeping_write"] < 1e-4 and keep["retention_median"] > 0.99
    forget = keep_gate_stats(lstm_with(0.0, 0.0), x, spans)["layers"]["l0_fwd"]
    assert forget["keeping_fraction"] == forget["near_one_fraction"] == 0.0
    assert forget["keeping_write"] is None and forget["retention_median"] == pytest.approx(
        0.5 ** 9)  # sigmoid(0) over the 9 steps 3..11
    assert keep_gate_stats(torch.nn.RNN(2, 4, batch_first=True), x, spans) is None


def test_the_gru_keep_gate_is_z():
    core = torch.nn.GRU(2, 3, batch_first=True)
    with torch.no_grad():
        for name, p in core.named_parameters():
            p.zero_()
            if name == "bias_ih_l0":  # r, z, n
                p[3:6].fill_(12.0)
    s = keep_gate_stats(core, torch.randn(4, 8, 2), np.tile([0, 7], (4, 1)))
    assert s["gate"] == "z" and s["layers"]["l0_fwd"]["keeping_fraction"] == 1.0


# ---------------------------------------------------------------- evaluations of a run
CFG = AddingConfig(seq_len=6, n_train=256, n_val=64, n_test=64)
TRAIN = TrainConfig(lr=0.01, max_epochs=2, early_stop=False)


def trained(family="lstm", **cfg):
    task, model_cfg = Adding(), FAMILIES[family].config(family=family, hidden_size=8, **cfg)
    spec = task.spec(CFG)
    torch.manual_seed(0)
    model = build_model(model_cfg, spec)
    data = task.generate(CFG, 0)
    fit(model, spec, lambda p, y: task.metrics(CFG, p, y), data, TRAIN, 0)
    return task, model_cfg, spec, model, data


@pytest.mark.parametrize("family", ["lstm", "numba_rnn"])
def test_length_points_load_the_same_weights_at_each_longer_length(family):
    task, model_cfg, spec, model, _ = trained(family)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    out = length_points(model, model_cfg, task, CFG, spec, 0, TRAIN)
    assert torch.equal(rng, torch.get_rng_state())  # building the long network drew nothing
    assert out["same_parameters"] and out["trained"] == 6
    assert [p["length"] for p in out["points"]] == [6 * f for f in LENGTH_FACTORS]
    assert all(p["n_params"] == out["n_params"] for p in out["points"])
    assert all(np.isfinite(p["metrics"]["mse"]) for p in out["points"])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_length_that_changes_the_network_is_recorded_not_hidden(monkeypatch):
    task, model_cfg, spec, model, _ = trained()
    wider = spec.__class__(**{**spec.to_dict(), "input_size": 3})
    monkeypatch.setattr(Adding, "spec", lambda self, cfg: wider if cfg.seq_len > 6 else spec)
    out = length_points(model, model_cfg, task, CFG, spec, 0, TRAIN)
    assert not out["same_parameters"] and out["points"] == []
    assert out["reason"].startswith("at 2x T:")


def test_train_split_metrics_take_as_many_rows_as_validation_and_gates_a_gated_model():
    task, _, spec, model, data = trained()
    m = train_split_metrics(model, task, CFG, spec, data, TRAIN)
    assert m["rows"] == 64 and m["mse"] == m["loss"] > 0
    gates = memory_gates(model, task, CFG, spec, data)
    assert gates["cell"] == "lstm" and gates["examples"] == 64
    assert 0 <= gates["layers"]["l0_fwd"]["keeping_fraction"] <= 1
    _, _, _, rnn, _ = trained("rnn")
    assert memory_gates(rnn, task, CFG, spec, data) is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_evaluations_run_where_the_model_is():
    task, model_cfg, spec, model, data = trained()
    model.to("cuda")
    out = length_points(model, model_cfg, task, CFG, spec, 0, TRAIN)
    assert out["same_parameters"] and all(np.isfinite(p["metrics"]["mse"]) for p in out["points"])
    assert memory_gates(model, task, CFG, spec, data)["cell"] == "lstm"
    assert train_split_metrics(model, task, CFG, spec, data, TRAIN)["rows"] == 64
