"""Optimisers and gradient clipping as in-place Numba kernels, following torch.optim's update rules.

Each update rule is written from the algorithm in torch's documentation (torch 2.13, defaults:
no weight decay, ``maximize=False``, single-tensor CPU path) and keeps the order of operations of
that algorithm, so float64 results agree with torch to the last few bits.

State layout
------------
Parameters and gradients are C-contiguous float32/float64 arrays of any shape; the kernels work
on their flattened views, elementwise, so one call can update one tensor or a whole flat parameter
vector (every rule is elementwise and the step count is shared, so updating the concatenation of
all parameters equals updating each in turn). An optimiser's state is

- ``state``: a float array ``(2, n)`` of the parameter dtype (``n`` = number of elements), zeros
  from :func:`init_state`; the rows are the per-element buffers of torch's ``optimizer.state``:

  ========  ===================  =====================
  kind      ``state[0]``         ``state[1]``
  ========  ===================  =====================
  SGD       ``momentum_buffer``  (unused)
  ADAM      ``exp_avg``          ``exp_avg_sq``
  RMSPROP   ``square_avg``       ``momentum_buffer``
  ADAGRAD   ``sum``              (unused)
  ========  ===================  =====================

- ``step``: an int64 array of shape ``(1,)``, the number of updates done so far (torch's
  ``state["step"]``); every update increments it first, as torch does.

- ``hp``: a float64 array of 4 hyper-parameters, see :func:`make_hparams` (torch's defaults):

  ========  =====  ===========  =============  ===========
  kind      hp[0]  hp[1]        hp[2]          hp[3]
  ========  =====  ===========  =============  ===========
  SGD       lr     momentum     dampening      (unused)
  ADAM      lr     beta1        beta2          eps
  RMSPROP   lr     alpha        eps            momentum
  ADAGRAD   lr     lr_decay     eps            (unused)
  ========  =====  ===========  =============  ===========

Not supported (torch's defaults are assumed): weight decay, SGD nesterov, Adam amsgrad, RMSprop
centered, maximize. Scalars are float64; float32 parameters are updated in float64 arithmetic
and rounded once per element (torch rounds the scalars to float32 first: last-bit differences).

Gradient clipping (in place, returns the pre-clip total norm as a float):

- ``clip_grad_norm_(grads, max_norm)``: grads is a tuple (all 1-D) or a numba typed List of
  arrays; :func:`clip_grad_norm` accepts any Python sequence of contiguous arrays.
  ``clip_grad_norm_flat_(g, offsets, max_norm)`` does the same on one flat vector whose
  parameters are the segments ``g[offsets[i]:offsets[i+1]]``.
  As ``torch.nn.utils.clip_grad_norm_(norm_type=2)``: total = ||(||g_1||, ..., ||g_k||)||_2,
  coef = max_norm / (total + 1e-6), and every gradient is multiplied by coef unless coef >= 1
  (so a NaN norm makes every gradient NaN, as torch's clamp-and-multiply does).
  Sums of squares are accumulated in float64 for both dtypes.
- ``clip_grad_value_(grads, clip_value)`` / ``clip_grad_value_flat_(g, clip_value)``: clamp each
  element to [-clip_value, clip_value]; NaN stays NaN (as ``torch.clamp``).
"""

import math

import numpy as np
from numba import njit

SGD, ADAM, RMSPROP, ADAGRAD = 0, 1, 2, 3
KINDS = {"sgd": SGD, "adam": ADAM, "rmsprop": RMSPROP, "adagrad": ADAGRAD}

# torch 2.13 defaults, in hp order
_DEFAULTS = {
    "sgd": {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0},
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "rmsprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0},
    "adagrad": {"lr": 1e-2, "lr_decay": 0.0, "eps": 1e-10},
}


def make_hparams(name: str, **overrides) -> tuple[int, np.ndarray]:
    """(kind, hp float64 (4,)) for optimiser ``name`` with torch's defaults plus ``overrides``.

    Adam also accepts ``betas=(beta1, beta2)``. Unknown names raise ValueError.
    """
    name = name.lower()
    if name not in _DEFAULTS:
        raise ValueError(f"unknown optimiser {name!r}; expected one of {sorted(_DEFAULTS)}")
    if "betas" in overrides:
        overrides["beta1"], overrides["beta2"] = overrides.pop("betas")
    vals = dict(_DEFAULTS[name])
    unknown = set(overrides) - set(vals)
    if unknown:
        raise ValueError(f"{name}: unsupported hyper-parameters {sorted(unknown)}")
    vals.update({k: float(v) for k, v in overrides.items()})
    hp = np.zeros(4)
    hp[: len(vals)] = list(vals.values())
    return KINDS[name], hp


def init_state(n: int, dtype, kind: int = SGD, initial_accumulator_value: float = 0.0):
    """Zeroed optimiser state for ``n`` elements: (state (2, n) of ``dtype``, step int64 (1,)).

    Adagrad's accumulator starts at ``initial_accumulator_value`` (torch's option, default 0).
    """
    state = np.zeros((2, n), dtype=dtype)
    if kind == ADAGRAD:
        state[0] = initial_accumulator_value
    return state, np.zeros(1, dtype=np.int64)


# ---- update rules (p, g: same shape, C-contiguous; buffers: (n,) views, e.g. state[0]) ---------


@njit(cache=True, error_model="numpy")
def sgd_update(p, g, buf, step, lr, momentum=0.0, dampening=0.0):
    """SGD: with momentum, b = g on the first step, else b = momentum*b + (1-dampening)*g; then
    p -= lr * b (p -= lr * g without momentum). Nesterov and weight decay are not supported."""
    pf, gf = p.ravel(), g.ravel()
    step[0] += 1
    if momentum != 0.0:
        if step[0] == 1:
            for i in range(pf.size):
                buf[i] = gf[i]
        else:
            a = 1.0 - dampening
            for i in range(pf.size):
                buf[i] = buf[i] * momentum + a * gf[i]
        for i in range(pf.size):
            pf[i] = pf[i] + (-lr) * buf[i]
    else:
        for i in range(pf.size):
            pf[i] = pf[i] + (-lr) * gf[i]


@njit(cache=True, error_model="numpy")
def adam_update(p, g, exp_avg, exp_avg_sq, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam (amsgrad off): m = lerp(m, g, 1-beta1), v = beta2*v + (1-beta2)*g*g,
    p -= (lr / (1-beta1^t)) * m / (sqrt(v) / sqrt(1-beta2^t) + eps)."""
    pf, gf = p.ravel(), g.ravel()
    step[0] += 1
    t = float(step[0])
    w = 1.0 - beta1
    c2 = 1.0 - beta2
    step_size = lr / (1.0 - beta1**t)
    bc2_sqrt = math.sqrt(1.0 - beta2**t)
    for i in range(pf.size):
        gi = gf[i]
        m = exp_avg[i]
        # torch.lerp(start, end, w): start + w*(end-start) for w < 0.5, else end - (end-start)*(1-w)
        if w < 0.5:
            m = m + w * (gi - m)
        else:
            m = gi - (gi - m) * (1.0 - w)
        exp_avg[i] = m
        v = exp_avg_sq[i] * beta2 + c2 * gi * gi
        exp_avg_sq[i] = v
        denom = math.sqrt(v) / bc2_sqrt + eps
        pf[i] = pf[i] + (-step_size) * (exp_avg[i] / denom)


@njit(cache=True, error_model="numpy")
def rmsprop_update(p, g, square_avg, buf, step, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0):
    """RMSprop (not centered): s = alpha*s + (1-alpha)*g*g, a = sqrt(s) + eps; with momentum
    b = momentum*b + g/a (b starts at 0), p -= lr*b; without, p -= lr * g/a."""
    pf, gf = p.ravel(), g.ravel()
    step[0] += 1
    c = 1.0 - alpha
    for i in range(pf.size):
        gi = gf[i]
        s = square_avg[i] * alpha + c * gi * gi
        square_avg[i] = s
        avg = math.sqrt(s) + eps
        if momentum > 0.0:
            b = buf[i] * momentum + gi / avg
            buf[i] = b
            pf[i] = pf[i] + (-lr) * b
        else:
            pf[i] = pf[i] + (-lr) * (gi / avg)


@njit(cache=True, error_model="numpy")
def adagrad_update(p, g, state_sum, step, lr=1e-2, lr_decay=0.0, eps=1e-10):
    """Adagrad: clr = lr / (1 + (t-1)*lr_decay), s += g*g, p -= clr * g / (sqrt(s) + eps)."""
    pf, gf = p.ravel(), g.ravel()
    step[0] += 1
    clr = lr / (1.0 + (float(step[0]) - 1.0) * lr_decay)
    for i in range(pf.size):
        gi = gf[i]
        s = state_sum[i] + gi * gi
        state_sum[i] = s
        pf[i] = pf[i] + (-clr) * (gi / (math.sqrt(s) + eps))


@njit(cache=True)
def optimizer_update(kind, p, g, state, step, hp):
    """One update of optimiser ``kind`` (SGD/ADAM/RMSPROP/ADAGRAD) with the layout above."""
    if kind == SGD:
        sgd_update(p, g, state[0], step, hp[0], hp[1], hp[2])
    elif kind == ADAM:
        adam_update(p, g, state[0], state[1], step, hp[0], hp[1], hp[2], hp[3])
    elif kind == RMSPROP:
        rmsprop_update(p, g, state[0], state[1], step, hp[0], hp[1], hp[2], hp[3])
    elif kind == ADAGRAD:
        adagrad_update(p, g, state[0], step, hp[0], hp[1], hp[2])
    else:
        raise ValueError("optimizer_update: unknown optimiser kind")


# ---- gradient clipping -------------------------------------------------------------------------


@njit(cache=True)
def _sumsq(a):
    acc = 0.0
    for i in range(a.size):
        v = float(a[i])
        acc += v * v
    return acc


@njit(cache=True)
def _scale(a, coef):
    for i in range(a.size):
        a[i] = a[i] * coef


@njit(cache=True)
def _clamp(a, lo, hi):
    for i in range(a.size):
        v = a[i]
        if v > hi:
            a[i] = hi
        elif v < lo:
            a[i] = lo


@njit(cache=True, error_model="numpy")
def _clip_coef(total, max_norm):
    coef = max_norm / (total + 1e-6)
    return coef, not (coef >= 1.0)  # NaN coef: scale too (torch's clamp keeps NaN)


@njit(cache=True)
def clip_grad_norm_(grads, max_norm):
    """Clip a tuple / typed List of gradient arrays (each flattened) by their global L2 norm."""
    total = 0.0
    for g in grads:
        n = math.sqrt(_sumsq(g.ravel()))  # per-tensor norm, then the norm of the norms
        total += n * n
    total = math.sqrt(total)
    coef, apply = _clip_coef(total, max_norm)
    if apply:
        for g in grads:
            _scale(g.ravel(), coef)
    return total


@njit(cache=True)
def grad_norm_flat(g, offsets):
    """Global L2 norm of the parameters ``g[offsets[i]:offsets[i+1]]`` (norm of their norms)."""
    total = 0.0
    for k in range(offsets.size - 1):
        n = math.sqrt(_sumsq(g[offsets[k]: offsets[k + 1]]))
        total += n * n
    return math.sqrt(total)


@njit(cache=True)
def clip_grad_norm_flat_(g, offsets, max_norm):
    """clip_grad_norm_ for a flat gradient vector g (n,) with parameter boundaries ``offsets``."""
    total = grad_norm_flat(g, offsets)
    coef, apply = _clip_coef(total, max_norm)
    if apply:
        _scale(g, coef)
    return total


@njit(cache=True)
def clip_grad_value_(grads, clip_value):
    """Clamp every element of a tuple / typed List of arrays to [-clip_value, clip_value]."""
    for g in grads:
        _clamp(g.ravel(), -clip_value, clip_value)


@njit(cache=True)
def clip_grad_value_flat_(g, clip_value):
    """Clamp every element of one array to [-clip_value, clip_value] in place."""
    _clamp(g.ravel(), -clip_value, clip_value)


def _flat_views(arrays):
    views = []
    for a in arrays:
        if not (isinstance(a, np.ndarray) and a.flags.c_contiguous):
            raise ValueError("clip: every gradient must be a C-contiguous numpy array")
        views.append(a.reshape(-1))  # a view: the in-place update reaches the caller's array
    if len({v.dtype for v in views}) > 1:
        raise ValueError("clip: all gradients must share one dtype")
    return tuple(views)


def clip_grad_norm(grads, max_norm: float) -> float:
    """Python front end of :func:`clip_grad_norm_` for any sequence of contiguous arrays."""
    views = _flat_views(grads)
    if not views:
        return 0.0
    return float(clip_grad_norm_(views, float(max_norm)))


def clip_grad_value(grads, clip_value: float) -> None:
    """Python front end of :func:`clip_grad_value_` for any sequence of contiguous arrays."""
    views = _flat_views(grads)
    if views:
        clip_grad_value_(views, float(clip_value))
