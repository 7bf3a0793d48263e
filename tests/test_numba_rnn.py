"""NumbaRNN vs torch.nn.RNN: weights, outputs, gradients, per-step state gradients, training."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rnnbench.models.numba_rnn import NumbaRNN

F64 = torch.float64
TOL = 1e-10


@pytest.fixture
def one_thread():
    # torch's OpenMP pool stalls badly when the 2-core machine is shared; one thread is steadier
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def close(a, b, tol=TOL, msg=""):
    torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=msg or None)


def pair(D, H, L, bidir, relu, dtype=F64, seed=0, scale=1.0):
    """A NumbaRNN and an nn.RNN (batch_first) with identical weights."""
    kw = {"num_layers": L, "nonlinearity": "relu" if relu else "tanh", "bidirectional": bidir}
    torch.manual_seed(seed)
    ours = NumbaRNN(D, H, dtype=dtype, **kw)
    with torch.no_grad():
        for p in ours.parameters():
            p.mul_(scale)
    ref = nn.RNN(D, H, batch_first=True, dtype=dtype, **kw)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def inputs(B, T, D, L, dirs, H, dtype=F64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, D, generator=g, dtype=dtype).requires_grad_(True)
    h0 = (0.5 * torch.randn(L * dirs, B, H, generator=g, dtype=dtype)).requires_grad_(True)
    w_out = torch.randn(B, T, dirs * H, generator=g, dtype=dtype)
    w_hn = torch.randn(L * dirs, B, H, generator=g, dtype=dtype)
    return x, h0, w_out, w_hn


def grads_of(model, x, h0, w_out, w_hn):
    out, h_n = model(x, h0)
    loss = (out * w_out).sum() + (h_n * w_hn).sum()
    model.zero_grad()
    x.grad = h0.grad = None
    loss.backward()
    g = {n: p.grad.clone() for n, p in model.named_parameters()}
    g["x"], g["h0"] = x.grad.clone(), h0.grad.clone()
    return out, h_n, g


def check_parity(B, T, D, H, L, bidir, relu, scale=1.0, tol=TOL, dtype=F64, seed=0):
    ours, ref = pair(D, H, L, bidir, relu, dtype=dtype, seed=seed, scale=scale)
    args = inputs(B, T, D, L, 2 if bidir else 1, H, dtype=dtype, seed=seed + 1)
    out, h_n, g = grads_of(ours, *args)
    r_out, r_hn, r_g = grads_of(ref, *args)
    assert out.shape == r_out.shape and h_n.shape == r_hn.shape
    close(out, r_out, tol, "out")
    close(h_n, r_hn, tol, "h_n")
    assert g.keys() == r_g.keys()
    for name in g:
        close(g[name], r_g[name], tol, name)
    return out


def test_same_weights_as_nn_rnn_under_seed():
    for kw in ({}, {"num_layers": 3, "bidirectional": True, "nonlinearity": "relu"}):
        torch.manual_seed(123)
        ours = NumbaRNN(5, 7, **kw)
        torch.manual_seed(123)
        ref = nn.RNN(5, 7, batch_first=True, **kw)
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
        for (n, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters(), strict=True):
            assert p.shape == q.shape and torch.equal(p, q), n
        assert abs(ours.weight_hh_l0).max() <= 1 / math.sqrt(7)


@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("B,T", [(1, 1), (1, 6), (4, 1), (3, 8)])
def test_parity_with_nn_rnn(B, T, L, bidir, relu):
    check_parity(B, T, 3, 5, L, bidir, relu)


@pytest.mark.parametrize("relu", [False, True])
def test_parity_long_sequence(relu):
    out = check_parity(2, 300, 3, 8, 2, True, relu, scale=0.5)
    assert torch.isfinite(out).all() and out.abs().max() > 1e-3


def unrolled(x, h0, params, L, dirs, relu):
    """Stacked (bi)RNN from per-step torch ops; returns out, h_n, {(k, d): [h_t for t]}."""
    act = torch.relu if relu else torch.tanh
    T, layer_in, hs_all, h_n = x.shape[1], x, {}, []
    for k in range(L):
        outs = []
        for d in range(dirs):
            sfx = f"l{k}" + ("_reverse" if d else "")
            w_ih, w_hh, b_ih, b_hh = (params[f"{n}_{sfx}"]
                                      for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            h, hs = h0[k * dirs + d], [None] * T
            for t in (reversed(range(T)) if d else range(T)):
                h = act(layer_in[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
                h.retain_grad()
                hs[t] = h
            hs_all[(k, d)] = hs
            h_n.append(h)
            outs.append(torch.stack(hs, 1))  # (B, T, H)
        layer_in = torch.cat(outs, 2)
    return layer_in, torch.stack(h_n), hs_all


@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("relu", [False, True])
def test_state_grads_match_unrolled_reference(bidir, relu):
    B, T, D, H, L, dirs = 3, 9, 2, 4, 2, 1 + bidir
    ours, _ = pair(D, H, L, bidir, relu)
    x, h0, w_out, w_hn = inputs(B, T, D, L, dirs, H)
    res = ours.forward_with_state_grads(x, h0, grad_out=w_out, grad_hn=w_hn)
    params = dict(ours.named_parameters())
    out, h_n, hs = unrolled(x, h0, params, L, dirs, relu)
    ((out * w_out).sum() + (h_n * w_hn).sum()).backward()
    close(res.out, out.detach())
    close(res.h_n, h_n.detach())
    assert res.dh.shape == (L, dirs, B, T, H)
    for (k, d), steps in hs.items():
        close(res.dh[k, d], torch.stack([h.grad for h in steps], 1), msg=f"dh {k} {d}")
    close(res.dx, x.grad)
    close(res.dh0, h0.grad)
    for n, p in params.items():
        close(res.param_grads[n], p.grad, msg=n)
        p.grad = None
    # loss_fn seeding, and nothing accumulated into .grad
    res2 = ours.forward_with_state_grads(
        x, h0, loss_fn=lambda o, hn: (o * w_out).sum() + (hn * w_hn).sum())
    close(res2.dh, res.dh)
    assert all(p.grad is None for p in ours.parameters())


def test_gradcheck_finite_differences():
    ours, _ = pair(2, 3, 2, True, False)
    names = [n for n, _ in ours.named_parameters()]
    x, h0, _, _ = inputs(2, 3, 2, 2, 2, 3)
    params = [p.detach().clone().requires_grad_(True) for p in ours.parameters()]

    def f(x, h0, *ps):
        return torch.func.functional_call(ours, dict(zip(names, ps, strict=True)), (x, h0))

    assert torch.autograd.gradcheck(f, (x, h0, *params), eps=1e-6, atol=1e-7, rtol=1e-6)


def test_float32_agrees_with_torch(one_thread):
    # float32 rounding differs in summation order (BLAS vs MKL): agree to ~1e-5, not bitwise
    check_parity(4, 50, 8, 32, 2, True, False, tol=2e-5, dtype=torch.float32)


@pytest.mark.parametrize("relu", [False, True])
def test_nan_and_inf_propagate(relu):
    ours, ref = pair(3, 4, 2, True, relu)
    x = torch.randn(2, 5, 3, dtype=F64)
    x[1, 2, 0] = float("nan")
    assert not torch.isfinite(ours(x)[0].sum())
    x[1, 2, 0] = float("inf")
    ours_finite = torch.isfinite(ours(x)[0].sum()).item()
    assert ours_finite == torch.isfinite(ref(x)[0].sum()).item()
    if relu:
        assert not ours_finite


def test_rejects_non_cpu_and_bad_dtype():
    ours = NumbaRNN(3, 4)
    with pytest.raises(ValueError, match="CPU"):
        ours(torch.empty(2, 5, 3, device="meta"))
    with pytest.raises(ValueError, match="dtype"):
        ours(torch.zeros(2, 5, 3, dtype=F64))


def test_unbatched_input():
    ours, ref = pair(3, 4, 2, True, False)
    x = torch.randn(5, 3, dtype=F64)
    for a, b in zip(ours(x), ref(x), strict=True):
        close(a, b)


def test_training_matches_nn_rnn_for_100_steps(one_thread):
    B, T, D, H = 8, 15, 4, 16
    data = torch.Generator().manual_seed(9)
    xs = [torch.randn(B, T, D, generator=data, dtype=F64) for _ in range(100)]
    # learnable target: running mean of the first feature
    batches = [(x, x[..., :1].cumsum(1) / torch.arange(1, T + 1, dtype=F64)[:, None]) for x in xs]
    losses = []
    for cls in (NumbaRNN, nn.RNN):
        torch.manual_seed(0)
        rnn = cls(D, H, num_layers=2, batch_first=True, dtype=F64)
        head = nn.Linear(H, 1, dtype=F64)
        opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-2)
        run = []
        for x, y in batches:
            opt.zero_grad()
            loss = nn.functional.mse_loss(head(rnn(x)[0]), y)
            loss.backward()
            nn.utils.clip_grad_norm_(rnn.parameters(), 1.0)
            opt.step()
            run.append(loss.item())
        losses.append(torch.tensor(run, dtype=F64))
    ours, ref = losses
    assert ours[-10:].mean() < 0.5 * ours[:10].mean()  # it actually trains
    assert ((ours - ref).abs() / ref.abs()).max() < 1e-9


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 4), T=st.integers(1, 10), D=st.integers(1, 5), H=st.integers(1, 6),
       L=st.integers(1, 3), bidir=st.booleans(), relu=st.booleans(), seed=st.integers(0, 999))
def test_random_shapes(B, T, D, H, L, bidir, relu, seed):
    check_parity(B, T, D, H, L, bidir, relu, seed=seed)


def test_in_place_weight_edit_before_backward_is_caught():
    ours, _ = pair(3, 4, 1, False, False)
    out, _ = ours(torch.randn(2, 5, 3, dtype=F64))
    with torch.no_grad():
        ours.weight_hh_l0.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_compile_kernels_compiles_what_the_pipeline_calls(capsys):
    from numba import types

    from rnnbench.cli import main
    from rnnbench.kernels.rnn import rnn_backward, rnn_forward
    from rnnbench.kernels.scan import scan_backward, scan_forward
    assert main(["compile"]) == 0
    assert "numba kernels (float32): ready in" in capsys.readouterr().out
    for kernel in (rnn_forward, rnn_backward, scan_forward, scan_backward):
        assert any(sig[0] == types.Array(types.float32, 3, "C") for sig in kernel.signatures)
