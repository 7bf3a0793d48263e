"""Numba RNN kernels vs an unrolled torch reference, finite differences and edge cases."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnbench.kernels.rnn import rnn_backward, rnn_forward, tanh_array

TOL = 1e-10
GRAD_NAMES = ["dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"]


def make_case(T, B, D, H, seed=0, scale=0.5, dtype=np.float64):
    rng = np.random.default_rng(seed)

    def r(*shape):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    return {
        "x": r(T, B, D), "h0": r(B, H), "w_ih": r(H, D), "w_hh": r(H, H),
        "b_ih": r(H), "b_hh": r(H), "grad_out": r(T, B, H), "grad_hn": r(B, H),
    }


def run_kernels(c, relu, reverse):
    out, h_n = rnn_forward(c["x"], c["h0"], c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"],
                           relu, reverse)
    grads = rnn_backward(c["x"], c["h0"], out, c["w_ih"], c["w_hh"], c["grad_out"],
                         c["grad_hn"], relu, reverse)
    return out, h_n, grads


def torch_reference(c, relu, reverse):
    """Unrolled torch autograd: out, h_n, grads of (x, h0, w_ih, w_hh, b_ih, b_hh), dh (T,B,H)."""
    names = ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"]
    x, h0, w_ih, w_hh, b_ih, b_hh = [torch.tensor(c[n], requires_grad=True) for n in names]
    act = torch.relu if relu else torch.tanh
    T = x.shape[0]
    hs, h = [None] * T, h0
    for t in (reversed(range(T)) if reverse else range(T)):
        h = act(x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        h.retain_grad()
        hs[t] = h
    out = torch.stack(hs)
    loss = (out * torch.tensor(c["grad_out"])).sum() + (h * torch.tensor(c["grad_hn"])).sum()
    loss.backward()
    grads = [t.grad.numpy() for t in (x, h0, w_ih, w_hh, b_ih, b_hh)]
    dh = torch.stack([s.grad for s in hs]).numpy()
    return out.detach().numpy(), h.detach().numpy(), grads, dh


def assert_matches_reference(c, relu, reverse, tol=TOL):
    out, h_n, grads = run_kernels(c, relu, reverse)
    r_out, r_hn, r_grads, r_dh = torch_reference(c, relu, reverse)
    np.testing.assert_allclose(out, r_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(h_n, r_hn, rtol=tol, atol=tol)
    for name, g, rg in zip(GRAD_NAMES, grads[:6], r_grads, strict=True):
        np.testing.assert_allclose(g, rg, rtol=tol, atol=tol, err_msg=name)
    np.testing.assert_allclose(grads[6], r_dh, rtol=tol, atol=tol, err_msg="dh")


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T,B", [(1, 1), (1, 4), (7, 1), (9, 3)])
def test_matches_torch(relu, reverse, T, B):
    assert_matches_reference(make_case(T, B, 4, 5, seed=T * 10 + B), relu, reverse)


@pytest.mark.parametrize("B,H", [(3, 256), (20, 128), (4, 128)])
def test_both_recurrent_gemm_variants(B, H):
    # (3, 256) and (4, 128) take the transposed-GEMM path, (20, 128) the plain one
    for relu, reverse in [(False, False), (True, True)]:
        assert_matches_reference(make_case(5, B, 3, H, seed=H + B, scale=0.1), relu, reverse)


@pytest.mark.parametrize("relu", [False, True])
def test_long_sequence(relu):
    c = make_case(300, 2, 3, 6, seed=1, scale=0.3)
    assert_matches_reference(c, relu, reverse=False)
    assert np.all(np.isfinite(run_kernels(c, relu, False)[2][0]))


@pytest.mark.parametrize("reverse", [False, True])
def test_chunks_reproduce_full_sequence(reverse):
    """Truncated-BPTT plumbing: chunked forward with carried h, and chunked backward seeded with
    the later chunk's dh0 as grad_hn, reproduce the full-sequence results exactly."""
    c = make_case(10, 3, 2, 4, seed=3)
    out, h_n, grads = run_kernels(c, False, reverse)
    sl = [slice(0, 4), slice(4, 10)]
    order = sl[::-1] if reverse else sl  # the order in which the direction visits the chunks
    h, parts = c["h0"], {}
    for s in order:
        parts[s.start] = (s, h) + rnn_forward(c["x"][s], h, c["w_ih"], c["w_hh"], c["b_ih"],
                                                c["b_hh"], False, reverse)
        h = parts[s.start][3]
    np.testing.assert_allclose(h, h_n, rtol=0, atol=1e-14)
    g, dw_hh = c["grad_hn"], 0.0
    for s in order[::-1]:
        _, h0_s, o, _ = parts[s.start]
        gs = rnn_backward(c["x"][s], h0_s, o, c["w_ih"], c["w_hh"], c["grad_out"][s], g,
                          False, reverse)
        np.testing.assert_allclose(o, out[s], rtol=0, atol=1e-14)
        np.testing.assert_allclose(gs[0], grads[0][s], rtol=TOL, atol=TOL)
        np.testing.assert_allclose(gs[6], grads[6][s], rtol=TOL, atol=TOL)
        g, dw_hh = gs[1], dw_hh + gs[3]
    np.testing.assert_allclose(g, grads[1], rtol=TOL, atol=TOL)
    np.testing.assert_allclose(dw_hh, grads[3], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_finite_differences(relu, reverse):
    c = make_case(3, 2, 2, 3, seed=7)
    if relu:  # keep pre-activations away from the kink at 0, where FD is meaningless
        c["b_ih"] += 2.0
    names = ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"]

    def loss(cc):
        out, h_n = rnn_forward(*[cc[n] for n in names], relu, reverse)
        return np.sum(out * cc["grad_out"]) + np.sum(h_n * cc["grad_hn"])

    grads = run_kernels(c, relu, reverse)[2]
    eps = 1e-6
    for name, g in zip(names, grads[:6], strict=True):
        fd = np.zeros_like(c[name])
        for i in np.ndindex(fd.shape):
            cp = {k: v.copy() for k, v in c.items()}
            cp[name][i] += eps
            up = loss(cp)
            cp[name][i] -= 2 * eps
            fd[i] = (up - loss(cp)) / (2 * eps)
        # central differences: truncation O(eps^2) ~ 1e-12, rounding ~ 1e-16 / eps = 1e-10
        np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-8, err_msg=name)


def test_float32_follows_inputs():
    c64 = make_case(20, 3, 4, 8, seed=2)
    c32 = {k: v.astype(np.float32) for k, v in c64.items()}
    out64, hn64, g64 = run_kernels(c64, False, False)
    out32, hn32, g32 = run_kernels(c32, False, False)
    assert out32.dtype == hn32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in g32)
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)
    for a, b in zip(g32, g64, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("relu", [False, True])
def test_nan_propagates(relu):
    c = make_case(6, 2, 3, 4, seed=4)
    c["x"][2, 1, 0] = np.nan
    out, h_n, grads = run_kernels(c, relu, False)
    assert np.isnan(out[2:, 1]).all()  # the NaN enters every unit and stays in the recurrence
    assert np.isfinite(out[:2]).all() and np.isfinite(out[:, 0]).all()
    assert np.isnan(h_n[1]).all()
    assert not np.isfinite(grads[2]).all()  # dw_ih sees x_t


def test_relu_passes_inf():
    c = make_case(4, 1, 1, 2, seed=5)
    c["w_ih"][:] = 1.0
    c["x"][1, 0, 0] = np.inf
    out, _ = rnn_forward(c["x"], c["h0"], c["w_ih"], c["w_hh"], c["b_ih"], c["b_hh"], True, False)
    assert np.isinf(out[1]).all()


@pytest.mark.parametrize("dtype,max_ulp", [(np.float64, 4), (np.float32, 3)])
def test_fast_tanh_accuracy_and_special_values(dtype, max_ulp):
    rng = np.random.default_rng(0)
    tiny = np.logspace(np.log10(np.finfo(dtype).smallest_subnormal), 1.5, 20000)
    x = np.concatenate([3 * rng.standard_normal(50000), np.linspace(-25, 25, 20001), tiny, -tiny])
    x = x.astype(dtype)
    ref = np.tanh(x.astype(np.float64))  # float64 libm rounded once more: the float32 reference
    got = tanh_array(x)
    assert got.dtype == dtype
    ulps = np.abs(got - ref) / np.spacing(np.abs(ref.astype(dtype)))
    assert ulps.max() <= max_ulp
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30], dtype)
    got = tanh_array(special)
    np.testing.assert_array_equal(got, np.tanh(special))
    assert np.signbit(got[1]) and np.isnan(got[4])


def test_backward_lean_options_give_same_grads():
    c = make_case(6, 2, 3, 4, seed=8)
    out, _, grads = run_kernels(c, False, False)
    lean = rnn_backward(c["x"], c["h0"], out, c["w_ih"], c["w_hh"], c["grad_out"], c["grad_hn"],
                        False, False, False)
    assert lean[6].shape == (0, 2, 4)
    for a, b in zip(lean[:6], grads[:6], strict=True):
        np.testing.assert_array_equal(a, b)
    g = c["grad_out"].copy()
    scratch = rnn_backward(c["x"], c["h0"], out, c["w_ih"], c["w_hh"], g, c["grad_hn"],
                           False, False, True, True)
    for a, b in zip(scratch, grads, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(g, c["grad_out"])  # it was used as scratch


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 12), B=st.integers(1, 5), D=st.integers(1, 6), H=st.integers(1, 7),
       relu=st.booleans(), reverse=st.booleans(), seed=st.integers(0, 2**31))
def test_random_shapes(T, B, D, H, relu, reverse, seed):
    assert_matches_reference(make_case(T, B, D, H, seed=seed), relu, reverse)
