"""Linear readout and losses, written out in Numba, with the gradients torch's autograd gives.

All functions are ``@njit(cache=True)``, take C-contiguous float32 or float64 arrays (compiled per
dtype) and return new arrays; nothing is modified in place. Shapes use ``torch.nn.Linear``'s
layout::

    readout_forward(h (N, H), w (O, H), b (O,)) -> y (N, O)          y = h @ w.T + b
    readout_backward(h (N, H), w (O, H), dy (N, O)) -> dh (N, H), dw (O, H), db (O,)

Losses return ``(loss, dpred)`` with ``loss`` a Python-float-like scalar (float64, accumulated
in float64 for both dtypes) and ``dpred`` = d loss / d pred in the dtype of ``pred``, both
averaged exactly as torch's default ``reduction="mean"``:

    mse_loss_grad(pred (N, O), target (N, O))          = F.mse_loss(pred, target)
        mean over all N*O elements; dpred = 2 (pred - target) / (N*O)
    xent_loss_grad(logits (N, C), target int (N,))     = F.cross_entropy(logits, target)
        mean over the N rows of logsumexp(logits[n]) - logits[n, target[n]] (max-shifted, so
        large logits do not overflow); dlogits = (softmax(logits) - onehot(target)) / N.
        A target outside [0, C) raises IndexError (torch raises too; no ignore_index).

Many-to-one ("last step") and many-to-many ("per step") readouts of a time-major RNN output
``out (T, B, H)`` are both plain 2-D calls:

- last step: ``h = out[T-1]`` (B, H) -> predictions (B, O), targets (B, O) or (B,);
- per step: ``h = out.reshape(T*B, H)`` -> predictions (T*B, O) in **time-major row order**
  (row ``t*B + b`` is step t of sequence b), targets (T, B, O) or (T, B) reshaped the same way.
  A batch-first caller's (B, T, ...) targets must be transposed to (T, B, ...) first. The mean
  does not depend on the row order, so the loss equals torch's on batch-first (B*T) rows up to
  summation order (last-bit), and the gradient rows are the same numbers permuted.

No fastmath: NaN and inf propagate as in torch (a NaN logit makes that row's loss NaN).
``error_model="numpy"`` gives IEEE semantics on division (e.g. N == 0 gives a NaN loss, as torch).
"""

import math

import numpy as np
from numba import njit


@njit(cache=True)
def readout_forward(h, w, b):
    """y (N, O) = h (N, H) @ w (O, H).T + b (O,)."""
    N = h.shape[0]
    n_out = w.shape[0]
    y = np.empty((N, n_out), dtype=h.dtype)
    if N == 0:
        return y
    np.dot(h, w.T, y)
    for n in range(N):
        for o in range(n_out):
            y[n, o] += b[o]
    return y


@njit(cache=True)
def readout_backward(h, w, dy):
    """Gradients of ``readout_forward`` given dy = dL/dy (N, O): (dh (N, H), dw (O, H), db (O,))."""
    N, H = h.shape
    n_out = w.shape[0]
    dh = np.empty((N, H), dtype=h.dtype)
    dw = np.empty((n_out, H), dtype=h.dtype)
    db = np.zeros(n_out, dtype=h.dtype)
    if N == 0:
        dh[:] = 0.0
        dw[:] = 0.0
        return dh, dw, db
    np.dot(dy, w, dh)  # (N, O) @ (O, H)
    np.dot(dy.T, h, dw)  # (O, N) @ (N, H)
    for n in range(N):
        for o in range(n_out):
            db[o] += dy[n, o]
    return dh, dw, db


@njit(cache=True, error_model="numpy")
def mse_loss_grad(pred, target):
    """Mean squared error over all elements, as ``F.mse_loss``: (loss, dpred (N, O))."""
    p = pred.ravel()
    t = target.ravel()
    if p.size != t.size:
        raise ValueError("mse_loss_grad: pred and target differ in size")
    n = p.size
    d = np.empty(n, dtype=pred.dtype)
    norm = 2.0 / n  # torch's backward: (2 / numel) * (pred - target) * grad_output (= 1)
    acc = 0.0
    for i in range(n):
        diff = p[i] - t[i]
        acc += float(diff) * float(diff)
        d[i] = norm * diff
    return acc / n, d.reshape(pred.shape)


@njit(cache=True, error_model="numpy")
def xent_loss_grad(logits, target):
    """Softmax cross-entropy, mean over rows, as ``F.cross_entropy``: (loss, dlogits (N, C))."""
    N, C = logits.shape
    tgt = target.ravel()
    if tgt.size != N:
        raise ValueError("xent_loss_grad: target must have one class index per row")
    d = np.empty((N, C), dtype=logits.dtype)
    inv_n = 1.0 / N
    acc = 0.0
    for n in range(N):
        k = tgt[n]
        if k < 0 or k >= C:
            raise IndexError("xent_loss_grad: target class out of range")
        m = -np.inf
        for c in range(C):
            v = float(logits[n, c])
            if v > m or math.isnan(v):  # a NaN logit makes m (and the row) NaN
                m = v
        if m == -np.inf:  # every logit -inf: torch gives NaN too; avoid inf - inf below
            m = 0.0
        s = 0.0
        for c in range(C):
            s += math.exp(float(logits[n, c]) - m)
        lse = m + math.log(s)
        acc += lse - float(logits[n, k])
        for c in range(C):
            d[n, c] = math.exp(float(logits[n, c]) - lse) * inv_n
        d[n, k] -= inv_n
    return acc / N, d
