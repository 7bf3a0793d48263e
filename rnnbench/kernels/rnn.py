"""Vanilla RNN forward pass and backpropagation through time, written out in Numba.

One layer, one direction. Layout is **time-major**: ``x`` is ``(T, B, D)`` and every per-step
array is ``(T, B, H)``; all arrays must be C-contiguous and share one float dtype (float32 or
float64, the kernels are compiled per dtype). Weights use ``torch.nn.RNN``'s layout::

    w_ih (H, D)   w_hh (H, H)   b_ih (H,)   b_hh (H,)

Recurrence, with ``f`` = tanh or relu::

    h_t = f(x_t @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh)

The forward direction visits t = 0..T-1 with ``h_prev = h_{t-1}``; ``reverse=True`` visits
t = T-1..0 with ``h_prev = h_{t+1}``. In both cases ``out[t]`` is the state produced from
``x[t]`` and ``h_prev`` of the first visited step is ``h0``.

Truncated BPTT: run chunks one after another, passing the previous chunk's ``h_n`` as ``h0``.

Design notes: the input projection of all steps is one GEMM over ``T*B`` rows before the time
loop, the loop does one ``(B, H) @ (H, H)`` GEMM per step into a preallocated buffer followed by a
fused bias + nonlinearity pass, and the weight gradients are GEMMs over ``T*B`` rows after the
loop. ``np.dot`` inside njit calls BLAS (scipy's). No ``fastmath``: NaN/inf must propagate.
tanh is our own ``fast_tanh`` (below) because libm's scalar tanh (~19 ns/element) does not
vectorise and dominated the run time; it is accurate to a few ulp and keeps IEEE semantics.
"""

import math
from decimal import Decimal, localcontext

import numpy as np
from numba import njit, types
from numba.extending import overload

# ---- fast_tanh: tanh(x) = sign(x) * e / (e + 2), e = expm1(2|x|) ------------------------------
# expm1(y) = 2^k * expm1(r) + (2^k - 1) with y = k*ln2 + r, |r| <= ln2/2 (Cody-Waite reduction,
# ln2 split in hi + lo so that k*hi is exact), expm1(r) by its Taylor series, 2^k by a chain of
# selects. Everything is branch-free arithmetic, so LLVM vectorises the loops that call it (with
# error_model="numpy", which drops the division-by-zero check). Constants are derived here.


def _split_ln2(ftype, itype, clear_bits):
    # ln2 = hi + lo with the low `clear_bits` mantissa bits of hi zeroed (k*hi exact for small k)
    with localcontext() as ctx:
        ctx.prec = 60
        ln2 = Decimal(2).ln()
        hi = np.array(float(ln2), ftype)
        hi = (hi.view(itype) & itype(~((1 << clear_bits) - 1))).view(ftype)[()]
        return hi, ftype(float(ln2 - Decimal(float(hi))))


_HI64, _LO64 = _split_ln2(np.float64, np.int64, 8)  # k <= 58 (6 bits): k*hi exact
_HI32, _LO32 = _split_ln2(np.float32, np.int32, 5)  # k <= 27 (5 bits)
_C64 = tuple(1.0 / math.factorial(n) for n in range(2, 14))  # r^2/2! .. r^13/13!: < 0.1 ulp
_C32 = tuple(np.float32(1.0 / math.factorial(n)) for n in range(2, 8))  # .. r^7/7!
_ONE32, _TWO32, _CLAMP32 = np.float32(1), np.float32(2), np.float32(9.5)
_INV_LN2_32, _ROUND32 = np.float32(1 / math.log(2)), np.float32(1.5 * 2**23)


@njit(inline="always")
def _pow2_bit(s, k, bit, factor):
    b = k >= bit
    return (s * factor if b else s), (k - bit if b else k)


@njit(inline="always")
def _tanh64(x):
    a = abs(x)
    a = 20.0 if a > 20.0 else a  # tanh(20) rounds to 1; NaN passes (the comparison is False)
    y = 2.0 * a
    k = (y * 1.4426950408889634 + 6755399441055744.0) - 6755399441055744.0  # round(y / ln2)
    r = (y - k * _HI64) - k * _LO64
    p = _C64[11]
    for i in range(10, -1, -1):
        p = p * r + _C64[i]
    p = r + r * (r * p)  # expm1(r)
    s = 1.0
    s, k = _pow2_bit(s, k, 32.0, 4294967296.0)
    s, k = _pow2_bit(s, k, 16.0, 65536.0)
    s, k = _pow2_bit(s, k, 8.0, 256.0)
    s, k = _pow2_bit(s, k, 4.0, 16.0)
    s, k = _pow2_bit(s, k, 2.0, 4.0)
    s, k = _pow2_bit(s, k, 1.0, 2.0)
    e = s * p + (s - 1.0)
    return math.copysign(e / (e + 2.0), x)


@njit(inline="always")
def _tanh32(x):
    # same scheme in float32 arithmetic (8 lanes per AVX2 vector); every constant is float32
    a = abs(x)
    a = _CLAMP32 if a > _CLAMP32 else a  # tanh(9.5) rounds to 1 in float32
    y = _TWO32 * a
    k = (y * _INV_LN2_32 + _ROUND32) - _ROUND32
    r = (y - k * _HI32) - k * _LO32
    p = _C32[5]
    for i in range(4, -1, -1):
        p = p * r + _C32[i]
    p = r + r * (r * p)
    s = _ONE32
    s, k = _pow2_bit(s, k, np.float32(16), np.float32(65536))
    s, k = _pow2_bit(s, k, np.float32(8), np.float32(256))
    s, k = _pow2_bit(s, k, np.float32(4), np.float32(16))
    s, k = _pow2_bit(s, k, np.float32(2), np.float32(4))
    s, k = _pow2_bit(s, k, np.float32(1), np.float32(2))
    e = s * p + (s - _ONE32)
    return math.copysign(e / (e + _TWO32), x)


def fast_tanh(x):
    """Scalar tanh for jitted code (float32 or float64), see the comment above."""
    raise NotImplementedError("fast_tanh is only callable from Numba-compiled code")


@overload(fast_tanh, inline="always")
def _fast_tanh_overload(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    if x == types.float64:
        return lambda x: _tanh64(x)


@njit(cache=True, error_model="numpy")
def tanh_array(a):
    """Elementwise fast_tanh of a C-contiguous array (for tests and benchmarks)."""
    flat = a.ravel()
    out = np.empty_like(flat)
    for i in range(flat.size):
        out[i] = fast_tanh(flat[i])
    return out.reshape(a.shape)


@njit(cache=True, error_model="numpy")
def _act_tanh(o, rec, bias):
    # o (B, H) holds the input projection and becomes h_t in place; rec (B, H); bias (H,)
    B, H = o.shape
    for b in range(B):
        for j in range(H):
            o[b, j] = fast_tanh(o[b, j] + bias[j] + rec[b, j])


@njit(cache=True)
def _act_relu(o, rec, bias):
    B, H = o.shape
    for b in range(B):
        for j in range(H):
            v = o[b, j] + bias[j] + rec[b, j]
            # written so that NaN (v < 0 is False) passes through, like torch.relu
            o[b, j] = 0.0 if v < 0.0 else v


@njit(cache=True)
def _dpre_tanh(dh, dp, g, carry, h):
    # dh = g + carry is the total dL/dh_t; dp = dL/dpre_t = dh * (1 - h_t^2).  All (B, H).
    B, H = h.shape
    for b in range(B):
        for j in range(H):
            v = g[b, j] + carry[b, j]
            dh[b, j] = v
            dp[b, j] = v * (1.0 - h[b, j] * h[b, j])


@njit(cache=True)
def _dpre_relu(dh, dp, g, carry, h):
    B, H = h.shape
    for b in range(B):
        for j in range(H):
            v = g[b, j] + carry[b, j]
            dh[b, j] = v
            dp[b, j] = v if h[b, j] > 0.0 else 0.0


@njit(cache=True)
def _use_transposed_gemm(B, H):
    # Measured with scipy's OpenBLAS (1 thread, AVX2): for the per-step (B, H) x (H, H) product,
    # asking BLAS for the transposed result (H, B) and transposing it back (_transpose_into) is
    # up to 40% faster once H is large and B small; for small H the extra copy costs more.
    return H >= 256 or (H >= 128 and B <= 16)


@njit(cache=True)
def _transpose_into(src, dst):
    # src (H, B) -> dst (B, H), in column blocks so that reads and writes stay in L1
    H, B = src.shape
    for j0 in range(0, H, 32):
        j1 = min(j0 + 32, H)
        for b in range(B):
            for j in range(j0, j1):
                dst[b, j] = src[j, b]


@njit(cache=True)
def _recurrent_gemm(h, w, res, res_t, transposed):
    # res (B, H) = h (B, H) @ w; res_t (H, B) is scratch for the transposed variant
    if transposed:
        np.dot(w.T, h.T, res_t)
        _transpose_into(res_t, res)
    else:
        np.dot(h, w, res)


@njit(cache=True)
def rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, relu=False, reverse=False):
    """Run one RNN layer over a sequence.

    x (T, B, D), h0 (B, H) -> (out (T, B, H), h_n (B, H)).
    ``out`` is everything BPTT needs besides the inputs (f' is recovered from h_t).
    """
    T, B, D = x.shape
    H = w_hh.shape[0]
    out = np.empty((T, B, H), dtype=x.dtype)
    h_n = h0.copy()
    if T == 0:
        return out, h_n
    # all input projections at once: (T*B, D) @ (D, H); bias added in the fused pass
    np.dot(x.reshape(T * B, D), w_ih.T, out.reshape(T * B, H))
    bias = b_ih + b_hh  # (H,)
    rec = np.empty((B, H), dtype=x.dtype)  # recurrent term, reused every step
    rec_t = np.empty((H, B), dtype=x.dtype)
    transposed = _use_transposed_gemm(B, H)
    h_prev = h0
    for s in range(T):
        t = T - 1 - s if reverse else s
        _recurrent_gemm(h_prev, w_hh.T, rec, rec_t, transposed)  # (B, H) @ (H, H)
        o = out[t]
        if relu:
            _act_relu(o, rec, bias)
        else:
            _act_tanh(o, rec, bias)
        h_prev = o
    h_n[:] = h_prev
    return out, h_n


@njit(cache=True)
def rnn_backward(x, h0, out, w_ih, w_hh, grad_out, grad_hn, relu=False, reverse=False,
                 need_dh=True, overwrite_grad_out=False):
    """Backpropagation through time for one layer.

    x (T, B, D), h0 (B, H), out (T, B, H) from ``rnn_forward``, grad_out = dL/d(out) (T, B, H),
    grad_hn = dL/d(h_n) (B, H).  Returns ``(dx (T, B, D), dh0 (B, H), dw_ih (H, D), dw_hh (H, H),
    db_ih (H,), db_hh (H,), dh (T, B, H))`` where ``dh[t]`` is the total dL/dh_t: the direct
    ``grad_out[t]`` plus the recurrent path from later-visited steps (plus ``grad_hn`` at the
    last visited step). With ``need_dh=False`` the per-step dh is not kept (saves a (T, B, H)
    buffer) and the returned dh has shape (0, B, H). ``overwrite_grad_out=True`` lets the kernel
    keep dL/d(pre-activation) in ``grad_out`` instead of a new (T, B, H) buffer (the caller's
    array is then destroyed).
    """
    T, B, D = x.shape
    H = w_hh.shape[0]
    dh = np.empty((T if need_dh else 1, B, H), dtype=x.dtype)
    # dL/d(pre-activation), kept for the weight gradients; step t of it only depends on step t
    # of grad_out, so it may overwrite grad_out in place
    dpre = grad_out if overwrite_grad_out else np.empty((T, B, H), dtype=x.dtype)
    carry = grad_hn.copy()  # gradient reaching h_t from the step visited after it, (B, H)
    carry_t = np.empty((H, B), dtype=x.dtype)
    transposed = _use_transposed_gemm(B, H)
    for s in range(T):
        t = s if reverse else T - 1 - s
        dh_t = dh[t if need_dh else 0]
        if relu:
            _dpre_relu(dh_t, dpre[t], grad_out[t], carry, out[t])
        else:
            _dpre_tanh(dh_t, dpre[t], grad_out[t], carry, out[t])
        _recurrent_gemm(dpre[t], w_hh, carry, carry_t, transposed)  # gradient to h_prev
    dh0 = carry

    dx = np.empty((T, B, D), dtype=x.dtype)
    dw_ih = np.empty((H, D), dtype=x.dtype)
    dw_hh = np.empty((H, H), dtype=x.dtype)
    db = np.zeros(H, dtype=x.dtype)
    if T == 0:
        dw_ih[:] = 0.0
        dw_hh[:] = 0.0
        return dx, dh0, dw_ih, dw_hh, db, db.copy(), dh[: T if need_dh else 0]
    dp2 = dpre.reshape(T * B, H)
    np.dot(dp2, w_ih, dx.reshape(T * B, D))  # (T*B, H) @ (H, D)
    np.dot(dp2.T, x.reshape(T * B, D), dw_ih)  # (H, T*B) @ (T*B, D)
    # dw_hh = sum_t dpre_t^T @ h_prev(t): one GEMM over the steps whose h_prev is in `out`, plus
    # the first visited step whose h_prev is h0.
    n = (T - 1) * B
    if reverse:
        np.dot(dpre[: T - 1].reshape(n, H).T, out[1:].reshape(n, H), dw_hh)
        first = dpre[T - 1]
    else:
        np.dot(dpre[1:].reshape(n, H).T, out[: T - 1].reshape(n, H), dw_hh)
        first = dpre[0]
    dw_hh += np.dot(first.T, h0)  # (H, B) @ (B, H)
    for r in range(T * B):
        for j in range(H):
            db[j] += dp2[r, j]
    return dx, dh0, dw_ih, dw_hh, db, db.copy(), dh[: T if need_dh else 0]
