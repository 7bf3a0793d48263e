"""Gradient-through-time probes: unrolled == fused, torch == Numba BPTT, closed forms, the bound,
derived figures, the training callback and the report section."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from rnnbench.models.recurrent import RecurrentNet
from rnnbench.probes.bound import bound_from_grads, qualifying
from rnnbench.probes.gradients import (
    ProbeConfig,
    curve_figures,
    decay_factor,
    horizon,
    make_probe_callback,
    raw_state_gradients,
    run_probe,
    state_gradients,
)
from rnnbench.probes.unrolled import recurrent_spectra, saturation, unrolled_forward
from rnnbench.report.probes import decay_figure, probes_section, vanishing_claim
from rnnbench.report.verdict import Verdict
from rnnbench.tasks.base import TaskSpec
from rnnbench.training.schema import TrainConfig

F64 = torch.float64
CORES = {"rnn_tanh": lambda **kw: nn.RNN(nonlinearity="tanh", **kw),
         "rnn_relu": lambda **kw: nn.RNN(nonlinearity="relu", **kw),
         "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.fixture(autouse=True)
def one_thread():
    # the 2-core machine is shared; torch's thread pool stalls when oversubscribed
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def spec_for(readout, output_size=2, input_size=3, loss="mse"):
    shape = "many_to_one" if readout == "last" else "many_to_many"
    return TaskSpec("probe_test", shape, input_size, output_size, loss, readout, "mse", False,
                    0.01, "test only")


def targets(spec, B, T, dtype=F64):
    if spec.loss == "xent":
        size = (B,) if spec.readout == "last" else (B, T)
        return torch.randint(0, spec.output_size, size)
    size = (B, spec.output_size) if spec.readout == "last" else (B, T, spec.output_size)
    return torch.randn(size, dtype=dtype)


# ---------------------------------------------------------------- unrolled == fused
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (F64, 1e-12)])
@pytest.mark.parametrize("kind", list(CORES))
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidir", [False, True])
def test_unrolled_reproduces_fused(dtype, tol, kind, layers, bidir):
    torch.manual_seed(layers * 10 + bidir)
    core = CORES[kind](input_size=3, hidden_size=5, num_layers=layers, bidirectional=bidir,
                       batch_first=True, dtype=dtype)
    B, T, dirs = 4, 7, 2 if bidir else 1
    x = torch.randn(B, T, 3, dtype=dtype)
    h0 = torch.randn(layers * dirs, B, 5, dtype=dtype)
    h0 = (h0, torch.randn_like(h0)) if kind == "lstm" else h0
    for init in (None, h0):
        with torch.no_grad():
            out, h_n = core(x, init)
            out_u, h_n_u, states = unrolled_forward(core, x, init)
        assert (out - out_u).abs().max() <= tol
        for a, b in zip(h_n if kind == "lstm" else [h_n], h_n_u if kind == "lstm" else [h_n_u],
                        strict=True):
            assert (a - b).abs().max() <= tol
        assert sorted(states) == [(k, d) for k in range(layers) for d in range(dirs)]
        # states are indexed by sequence position in both directions
        for d in range(dirs):
            top = torch.stack(states[(layers - 1, d)], dim=1)  # (B, T, H)
            assert torch.equal(top, out_u[:, :, d * 5:(d + 1) * 5])


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_state_gradient_is_total_derivative(kind):
    """Oracle: dL/dh_t equals d/dh0 of the FUSED core run on x[:, t+1:] from h0 = h_t."""
    torch.manual_seed(1)
    B, T, H = 3, 8, 4
    spec = spec_for("last")
    core = CORES[kind](input_size=3, hidden_size=H, batch_first=True, dtype=F64)
    model = RecurrentNet(core, H, False, 2, "last").double()
    x, y = torch.randn(B, T, 3, dtype=F64), targets(spec, B, T)
    got = state_gradients(model, spec, x, y, "task")["curves"]["l0_fwd"]["norm"]
    trace = {}
    with torch.no_grad():
        _, _, states = unrolled_forward(core, x, trace=trace)
    for t in (0, 3, T - 2):
        h = states[(0, 0)][t].clone().requires_grad_(True)
        init = (h, trace[(0, 0)]["c"][t]) if kind == "lstm" else h
        out, h_n = core(x[:, t + 1:], (init[0][None], init[1][None]) if kind == "lstm"
                        else init[None])
        last = h_n[0][-1] if kind == "lstm" else h_n[-1]
        loss = nn.functional.mse_loss(model.head(last), y)
        (g,) = torch.autograd.grad(loss, h)
        want = float(g.norm(dim=1).mean())
        assert got[T - 1 - t] == pytest.approx(want, rel=1e-10)


def test_lag_runs_from_where_each_direction_ends():
    """Forward: lag = T-1-t; backward: lag = t. Norms taken directly from autograd on the
    unrolled states, per example then averaged over the batch."""
    torch.manual_seed(9)
    B, T, H = 3, 7, 4
    core = nn.RNN(3, H, bidirectional=True, batch_first=True, dtype=F64)
    model = RecurrentNet(core, H, True, 2, "last").double()
    spec = spec_for("last")
    x, y = torch.randn(B, T, 3, dtype=F64), targets(spec, B, T)
    curves = state_gradients(model, spec, x, y, "task")["curves"]
    _, h_n, states = unrolled_forward(core, x)
    loss = nn.functional.mse_loss(model.head(torch.cat([h_n[0], h_n[1]], dim=1)), y)
    for d, name in ((0, "l0_fwd"), (1, "l0_bwd")):
        grads = torch.autograd.grad(loss, states[(0, d)], retain_graph=True)
        per_t = [float(g.norm(dim=1).mean()) for g in grads]  # indexed by position t
        by_lag = per_t[::-1] if d == 0 else per_t
        np.testing.assert_allclose(curves[name]["norm"], by_lag, rtol=1e-12)
        assert curves[name]["ratio"][0] == 1.0 and max(curves[name]["ratio"][1:]) < 1


# ---------------------------------------------------------------- torch == Numba BPTT
@pytest.mark.parametrize("readout", ["all", "last"])
@pytest.mark.parametrize("loss", ["task", "final"])
@pytest.mark.parametrize("relu", [False, True])
def test_torch_unrolled_matches_numba_bptt(readout, loss, relu):
    from rnnbench.models.numba_rnn import NumbaRNN

    torch.manual_seed(2)
    act = "relu" if relu else "tanh"
    numba = RecurrentNet(NumbaRNN(3, 5, num_layers=2, nonlinearity=act, bidirectional=True),
                         5, True, 2, readout).double()
    ref = RecurrentNet(nn.RNN(3, 5, num_layers=2, nonlinearity=act, bidirectional=True,
                              batch_first=True), 5, True, 2, readout).double()
    ref.load_state_dict(numba.state_dict())
    spec = spec_for(readout)
    x, y = torch.randn(4, 9, 3, dtype=F64), targets(spec, 4, 9)
    a, b = state_gradients(numba, spec, x, y, loss), state_gradients(ref, spec, x, y, loss)
    assert (a["method"], b["method"]) == ("numba_bptt", "torch_unrolled")
    assert a["loss_value"] == pytest.approx(b["loss_value"], rel=1e-12)
    assert set(a["curves"]) == {"l0_fwd", "l0_bwd", "l1_fwd", "l1_bwd"} == set(b["curves"])
    for name, curve in a["curves"].items():
        for field in ("norm", "ratio"):
            u, v = curve[field], b["curves"][name][field]
            assert [p is None for p in u] == [q is None for q in v]
            np.testing.assert_allclose([p for p in u if p is not None],
                                       [q for q in v if q is not None], rtol=1e-8, atol=0)


def test_final_loss_is_the_last_prediction_only():
    """readout 'all' + loss 'final' == readout 'last' + task loss (unidirectional: out[:, -1] is
    h_n); for the full task loss with readout 'all' the curve differs."""
    torch.manual_seed(3)
    core = nn.GRU(3, 4, batch_first=True, dtype=F64)
    every = RecurrentNet(core, 4, False, 2, "all").double()
    last = RecurrentNet(core, 4, False, 2, "last").double()
    last.head = every.head
    x, y = torch.randn(5, 6, 3, dtype=F64), torch.randn(5, 6, 2, dtype=F64)
    fin = state_gradients(every, spec_for("all"), x, y, "final")["curves"]["l0_fwd"]["norm"]
    ref = state_gradients(last, spec_for("last"), x, y[:, -1], "task")["curves"]["l0_fwd"]["norm"]
    np.testing.assert_allclose(fin, ref, rtol=1e-12)
    task = state_gradients(every, spec_for("all"), x, y, "task")["curves"]["l0_fwd"]["norm"]
    assert not np.allclose(task, fin)


# ---------------------------------------------------------------- closed forms
@pytest.mark.parametrize("s", [0.8, 1.0, 1.15])
def test_linear_recurrence_ratio_is_s_to_the_lag(s):
    """h_t = W h_{t-1} + W_ih x_t + b with W = s Q: dL/dh_{T-1-k} = (W^T)^k dL/dh_{T-1}, and Q
    orthogonal keeps every norm, so ratio[k] = s^k exactly."""
    torch.manual_seed(4)
    H, T = 6, 30
    core = nn.RNN(3, H, batch_first=True, dtype=F64)
    q, _ = torch.linalg.qr(torch.randn(H, H, dtype=F64))
    with torch.no_grad():
        core.weight_hh_l0.copy_(s * q)
    model = RecurrentNet(core, H, False, 2, "last").double()
    spec = spec_for("last")
    x, y = torch.randn(4, T, 3, dtype=F64), targets(spec, 4, T)
    g = state_gradients(model, spec, x, y, "final", nonlinearity="identity")
    ratio = np.array(g["curves"]["l0_fwd"]["ratio"])
    np.testing.assert_allclose(ratio, s ** np.arange(T), rtol=1e-10)
    assert decay_factor(ratio) == pytest.approx(s, rel=1e-9)
    first = next((k for k in range(T) if s ** k < 1e-3), None)
    assert horizon(ratio, 1e-3) == first


def _bound(model, spec, x, y, loss):
    _, _, grads, _ = raw_state_gradients(model, spec, x, y, loss)
    return bound_from_grads(model.core, grads, *qualifying(model, loss))


def test_which_steps_qualify_for_the_bound():
    def net(layers, bidir, readout):
        return RecurrentNet(nn.RNN(3, 4, num_layers=layers, bidirectional=bidir,
                                   batch_first=True), 4, bidir, 2, readout)

    assert qualifying(net(2, True, "last"), "task")[0] == [(1, 0), (1, 1)]  # top layer only
    assert qualifying(net(2, True, "all"), "final")[0] == [(1, 0)]  # out[:, T-1]: forward
    dirs, why = qualifying(net(1, False, "all"), "task")
    assert dirs == [] and why.startswith("none")
    model = net(1, False, "all")
    res = _bound(model, spec_for("all"), torch.randn(2, 5, 3), targets(spec_for("all"), 2, 5,
                                                                       torch.float32), "task")
    assert res["applicable"] is False and "no step qualifies" in res["reason"]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_bound_holds_on_measured_gradients_of_random_rnns(seed, scale, act):
    torch.manual_seed(seed)
    readout = "last" if seed % 2 else "all"
    core = nn.RNN(3, 8, num_layers=2, bidirectional=seed > 0, nonlinearity=act,
                  batch_first=True, dtype=F64)
    with torch.no_grad():
        for p in core.parameters():
            p.mul_(scale)
    model = RecurrentNet(core, 8, seed > 0, 2, readout).double()
    spec = spec_for(readout)
    res = _bound(model, spec, torch.randn(5, 12, 3, dtype=F64), targets(spec, 5, 12), "final")
    assert res["applicable"] and res["holds"] and res["tested"] > 0
    assert 0 < res["max_ratio"] <= 1 + res["tolerance"]


def test_bound_is_nearly_tight_in_the_linear_regime():
    """W_hh = 0.9 x orthogonal and |h| ~ 1e-4 (tanh' ~ 1): every measured ratio is 0.9, the
    bound itself; a check this close to its bound can fail."""
    torch.manual_seed(6)
    core = nn.RNN(3, 8, batch_first=True, dtype=F64)
    q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=F64))
    with torch.no_grad():
        core.weight_hh_l0.copy_(0.9 * q)
        core.bias_ih_l0.zero_()
        core.bias_hh_l0.zero_()
    model = RecurrentNet(core, 8, False, 2, "last").double()
    spec = spec_for("last")
    res = _bound(model, spec, 1e-4 * torch.randn(5, 20, 3, dtype=F64), targets(spec, 5, 20),
                 "task")
    assert res["holds"] and 0.999 < res["max_ratio"] <= 1 + 1e-12
    assert res["l0_fwd"]["sigma_max"] == pytest.approx(0.9, rel=1e-12)


def test_a_measured_ratio_above_its_bound_fails_the_check():
    torch.manual_seed(7)
    core = nn.RNN(3, 4, batch_first=True, dtype=F64)
    with torch.no_grad():
        core.weight_hh_l0.copy_(0.5 * torch.eye(4, dtype=F64))  # bound 0.5 per step
    g = torch.ones(2, 6, 4, dtype=F64)  # dL/dh_t equal at every step: ratio 1 > 0.5
    g[1] *= 0.5 ** torch.arange(5, -1, -1, dtype=F64)[:, None]  # example 1 at its bound
    res = bound_from_grads(core, {(0, 0): g}, [(0, 0)], "lags 1..T-1")
    assert res["holds"] is False and res["max_ratio"] == pytest.approx(2.0)
    assert res["tested"] == 10 and res["l0_fwd"]["lag_max_ratio"][1] == pytest.approx(2.0)
    g[0] = g[1]
    assert bound_from_grads(core, {(0, 0): g}, [(0, 0)], "lags 1..T-1")["holds"] is True
    zero = bound_from_grads(core, {(0, 0): torch.zeros(2, 6, 4, dtype=F64)}, [(0, 0)], "x")
    assert zero["applicable"] is False  # no ratio to test: nothing said to hold
    gru = bound_from_grads(nn.GRU(3, 4), {}, [(0, 0)], "x")
    assert gru["applicable"] is False and "Elman" in gru["reason"]


def test_numba_bptt_gradients_meet_the_bound_like_torchs():
    from rnnbench.models.numba_rnn import NumbaRNN

    torch.manual_seed(2)
    numba = RecurrentNet(NumbaRNN(3, 5, num_layers=2, bidirectional=True), 5, True, 2,
                         "last").double()
    ref = RecurrentNet(nn.RNN(3, 5, num_layers=2, bidirectional=True, batch_first=True), 5, True,
                       2, "last").double()
    ref.load_state_dict(numba.state_dict())
    spec = spec_for("last")
    x, y = torch.randn(4, 9, 3, dtype=F64), targets(spec, 4, 9)
    a, b = _bound(numba, spec, x, y, "task"), _bound(ref, spec, x, y, "task")
    assert a["holds"] and b["holds"] and a["max_ratio"] == pytest.approx(b["max_ratio"], rel=1e-8)


# ---------------------------------------------------------------- derived figures
def test_decay_and_horizon_on_synthetic_curves():
    lag = np.arange(15)
    r = list(0.5 ** lag)
    assert decay_factor(r) == pytest.approx(0.5, rel=1e-12)
    assert horizon(r, 1e-3) == 10  # 0.5^9 = 1.95e-3, 0.5^10 = 9.8e-4
    assert horizon(r, 1e-6) is None  # 0.5^14 = 6.1e-5: not within T = 15
    assert curve_figures({"ratio": r}, [1e-3, 1e-6]) == {
        "decay_factor": pytest.approx(0.5), "horizon@0.001": 10, "horizon@1e-06": None}
    # below the 1e-12 floor, zero and missing values are left out of the fit
    noisy = list(0.1 ** np.arange(20))
    noisy[14:] = [1e-30, 0.0, None, 1e-17, float("nan"), 0.0]
    assert decay_factor(noisy) == pytest.approx(0.1, rel=1e-10)
    assert horizon(noisy, 1e-6) == 7
    assert decay_factor(list(1.2 ** lag)) == pytest.approx(1.2)  # exploding
    assert horizon(1.2 ** lag, 1e-3) is None
    assert decay_factor([1.0, None, None]) is None and horizon([None, None], 1e-3) is None


def test_recurrent_spectra_known_matrices():
    rnn = nn.RNN(2, 2, batch_first=True)
    gru = nn.GRU(2, 2, batch_first=True)
    c, s = math.cos(0.3), math.sin(0.3)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(torch.tensor([[0.0, 2.0], [0.0, 0.0]]))  # nilpotent
        gru.weight_hh_l0.copy_(torch.tensor([[0.5, 0], [0, 0.25],  # r: diagonal
                                             [0, 3.0], [0, 0],  # z: nilpotent
                                             [0.7 * c, -0.7 * s], [0.7 * s, 0.7 * c]]))  # n
    f = recurrent_spectra(rnn)
    assert f["l0_fwd.w_hh.sigma_max"] == pytest.approx(2.0)
    assert f["l0_fwd.w_hh.spectral_radius"] == pytest.approx(0.0, abs=1e-7)
    g = recurrent_spectra(gru)
    assert g["l0_fwd.w_hh_r.sigma_max"] == pytest.approx(0.5)
    assert g["l0_fwd.w_hh_r.spectral_radius"] == pytest.approx(0.5)
    assert g["l0_fwd.w_hh_z.sigma_max"] == pytest.approx(3.0)
    assert g["l0_fwd.w_hh_z.spectral_radius"] == pytest.approx(0.0, abs=1e-7)
    assert g["l0_fwd.w_hh_n.sigma_max"] == pytest.approx(0.7)
    assert g["l0_fwd.w_hh_n.spectral_radius"] == pytest.approx(0.7)
    # the stacked (3H, H) matrix: its columns are orthogonal (the rotation's cross terms cancel),
    # so sigma_max is the longer column's norm
    assert g["l0_fwd.w_hh.sigma_max"] == pytest.approx(math.sqrt(0.25 ** 2 + 3.0 ** 2 + 0.49))
    assert g["l0_fwd.w_hh.spectral_radius"] is None


def test_saturation_fractions():
    torch.manual_seed(7)
    x = torch.randn(8, 10, 3)
    core = nn.RNN(3, 6, batch_first=True)
    assert saturation(core, 1e-4 * x)["l0_fwd.saturated_fraction"] == 0.0
    with torch.no_grad():
        core.weight_ih_l0.mul_(1e3)
    assert saturation(core, x)["l0_fwd.saturated_fraction"] > 0.9
    relu = nn.RNN(3, 6, nonlinearity="relu", batch_first=True)
    with torch.no_grad():
        for p in relu.parameters():
            p.fill_(-1.0)  # every pre-activation negative: all units dead
    assert saturation(relu, x.abs())["l0_fwd.saturated_fraction"] == 1.0
    lstm = saturation(nn.LSTM(3, 6, bidirectional=True, batch_first=True), x)
    assert {"l0_fwd.gates_saturated_fraction", "l0_bwd.saturated_fraction"} <= set(lstm)


# ---------------------------------------------------------------- config, probe, callback
def test_probe_config_is_strict():
    cfg = ProbeConfig()
    assert cfg.checkpoints[0] == 0 and cfg.thresholds == [1e-3, 1e-6]
    for bad in ({"checkpoints": [1.5]}, {"losses": ["middle"]}, {"thresholds": [0]},
                {"batch": 3}, {"losses": []}):
        with pytest.raises(ValueError):
            ProbeConfig(**bad)


def tiny_setup(family="lstm", readout="last", T=6):
    torch.manual_seed(8)
    core = CORES[family](input_size=3, hidden_size=4, batch_first=True)
    model = RecurrentNet(core, 4, False, 2, readout)
    spec = spec_for(readout)
    return model, spec, torch.randn(20, T, 3), targets(spec, 20, T, torch.float32)


def test_run_probe_is_json_friendly_and_complete():
    model, spec, x, y = tiny_setup("lstm", "all")
    res = run_probe(model, spec, x, y, ProbeConfig(batch_size=5))
    json.dumps(res, allow_nan=False)
    assert res["batch"] == 5 and res["seq_len"] == 6 and res["cell"] == "lstm"
    f = res["figures"]
    for key in ("task.l0_fwd.decay_factor", "final.l0_fwd.horizon@0.001",
                "final.l0_fwd.horizon@1e-06", "l0_fwd.w_hh_f.sigma_max",
                "l0_fwd.saturated_fraction", "l0_fwd.gates_saturated_fraction"):
        assert key in f
    assert f["bound.applicable"] is False
    assert len(res["gradients"]["task"]["cell_curves"]["l0_fwd"]["norm"]) == 6
    rnn_res = run_probe(*tiny_setup("rnn_tanh"), ProbeConfig(batch_size=5, losses=["final"]))
    assert rnn_res["figures"]["bound.holds"] is True and list(rnn_res["gradients"]) == ["final"]


def test_callback_fires_at_checkpoints():
    model, spec, x, y = tiny_setup("gru")
    cfg = ProbeConfig(batch_size=4, losses=["final"], checkpoints=[0.0, 0.25, 0.5, 1.0])
    cb, results = make_probe_callback(model, spec, x, y, cfg, total_steps=10)
    assert [(r["checkpoint"], r["step"]) for r in results] == [(0.0, 0)]  # before training
    for step in (2, 3, 4, 6, 9):  # 0.25 due at step 3, 0.5 at step 5
        cb({"step": step}, {"train_loss": [1.0], "grad_norm": [float(step), 2.0 * step, 0.5]})
    assert [(r["checkpoint"], r["step"]) for r in results] == [(0.0, 0), (0.25, 3), (0.5, 6)]
    assert results[2]["train_grad_norm"] == {"steps": 3, "median": 6.0, "max": 12.0, "last": 0.5}
    cb.finish(9)  # early stop: 1.0 never reached
    assert results[-1]["checkpoint"] == 1.0 and results[-1]["early_stop"] is True
    cb({"step": 10}, {"grad_norm": [1.0]})
    assert len(results) == 4  # nothing left to probe


def test_callback_in_fit():
    from rnnbench.training.fit import fit

    model, spec, x, y = tiny_setup("rnn_tanh")
    rng = np.random.default_rng(0)
    data = {s: {"x": rng.standard_normal((n, 6, 3)).astype(np.float32),
                "y": rng.standard_normal((n, 2)).astype(np.float32)}
            for s, n in (("train", 32), ("val", 8), ("test", 8))}
    cfg = TrainConfig(batch_size=8, max_epochs=3, early_stop=False, device="cpu")  # 4 steps/epoch
    pcfg = ProbeConfig(batch_size=8, losses=["task"], checkpoints=[0, 0.5, 1.0])
    cb, results = make_probe_callback(model, spec, torch.from_numpy(data["val"]["x"]),
                                      torch.from_numpy(data["val"]["y"]), pcfg, total_steps=12)
    out = fit(model, spec, lambda p, t: {"loss": float(np.mean((p - t) ** 2))}, data, cfg, 0,
              on_epoch=cb)
    assert out.steps == 12
    assert [(r["checkpoint"], r["step"]) for r in results] == [(0.0, 0), (0.5, 8), (1.0, 12)]
    # the probe saw the weights as they were at each checkpoint
    assert results[0]["figures"]["l0_fwd.w_hh.sigma_max"] != \
        results[-1]["figures"]["l0_fwd.w_hh.sigma_max"]


# ---------------------------------------------------------------- report
def fake_result(cell, factor, step, T=50, thresholds=(1e-3, 1e-6)):
    ratio = list(factor ** np.arange(T, dtype=np.float64))
    curve = {"norm": ratio, "ratio": ratio}
    figures = {f"final.l0_fwd.{k}": v for k, v in curve_figures(curve, thresholds).items()}
    figures.update({"l0_fwd.w_hh.sigma_max": 1.1, "l0_fwd.w_hh.spectral_radius": 0.6,
                    "l0_fwd.saturated_fraction": 0.0, "bound.applicable": cell == "rnn_tanh"})
    bound = {"applicable": False, "reason": f"{cell}: the bound is stated for Elman cells"}
    if cell == "rnn_tanh":
        figures.update({"bound.holds": True, "bound.max_ratio": 0.98})
        bound = {"applicable": True, "holds": True, "max_ratio": 0.98, "tested": 8 * (T - 1),
                 "loss": "final", "steps": "lags 1..T-1 of the top layer's states"}
    return {"step": step, "checkpoint": 0.0 if step == 0 else 1.0, "cell": cell, "seq_len": T,
            "batch": 8, "thresholds": list(thresholds), "figures": figures, "bound": bound,
            "gradients": {"final": {"curves": {"l0_fwd": curve}, "cell_curves": {}}}}


def test_verdict_rule():
    def group(v, lstm, gru):
        return {"rnn": [fake_result("rnn_tanh", v, 0)], "lstm": [fake_result("lstm", lstm, 0)],
                "gru": [fake_result("gru", gru, 0)]}

    def verdict(by_model):
        return vanishing_claim(by_model, "adding").verdict

    assert verdict(group(0.6, 0.9, 0.97)) == Verdict.HOLDS
    assert verdict(group(0.6, 0.9, 0.5)) == Verdict.CONDITION
    assert verdict(group(0.6, 0.5, 0.4)) == Verdict.NOT_OBSERVED  # gates no better
    assert verdict(group(0.99, 0.999, 0.999)) == Verdict.NOT_OBSERVED  # no vanishing in T
    alone = vanishing_claim({"rnn": [fake_result("rnn_tanh", 0.6, 0)]}, "adding")
    assert alone.verdict == Verdict.NOT_OBSERVED and "both a vanilla and a gated" in alone.detail
    mixed = group(0.6, 0.9, 0.95)
    mixed["gru"].append(fake_result("gru", 0.3, 100))  # trained: worse than the vanilla RNN
    mixed["rnn"].append(fake_result("rnn_tanh", 0.6, 100))
    mixed["lstm"].append(fake_result("lstm", 0.9, 100))
    c = vanishing_claim(mixed, "adding")
    assert c.verdict == Verdict.CONDITION and "init: holds" in c.detail


def test_a_failed_bound_shows_as_failed_in_the_section():
    by_model = {"rnn": [fake_result("rnn_tanh", 0.6, 0)], "lstm": [fake_result("lstm", 0.9, 0)]}
    md = "\n".join(probes_section({"adding": by_model}))
    assert "| 0.98 (ok) |" in md and "within the bound" in md and "**FAILED" not in md
    bad = by_model["rnn"][0]
    bad["figures"].update({"bound.holds": False, "bound.max_ratio": 1.7})
    bad["bound"].update(holds=False, max_ratio=1.7)
    md = "\n".join(probes_section({"adding": by_model}))
    assert "| 1.7 (**FAILED**) |" in md and "**FAILED: above the bound**" in md


def test_report_section_and_figure(tmp_path):
    by_model = {"rnn": [fake_result("rnn_tanh", 0.6, 0), fake_result("rnn_tanh", 0.7, 50)],
                "lstm": [fake_result("lstm", 0.9, 0)]}
    path = decay_figure(by_model, tmp_path / "decay.png", "adding: gradient decay")
    assert path.stat().st_size > 1000
    md = "\n".join(probes_section({"adding": by_model}, {"adding": "decay.png"}))
    assert "![gradient decay on adding](decay.png)" in md
    assert md.count("| rnn | rnn_tanh |") == 2 and "| lstm | lstm | init | 0 | 0.9 |" in md
    assert "| 0.6 | 14 | 28 |" in md  # 0.6^13 = 1.3e-3, 0.6^14 = 7.8e-4; 0.6^28 = 6.1e-7
    assert "**Verdict: holds**" in md
