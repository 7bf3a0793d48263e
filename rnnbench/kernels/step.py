"""A whole RNN training step in Numba: forward, readout, loss, BPTT, clipping, optimiser update.

Model: one layer, one direction (unidirectional only) ``torch.nn.RNN`` (bias=True, tanh or relu,
h0 = zeros) followed by a ``torch.nn.Linear(H, O)`` readout, applied either to the last step's
state (many-to-one) or to every step (many-to-many). No torch anywhere: numpy in, numpy out.

Flat parameter layout
---------------------
All parameters live in one C-contiguous vector ``theta`` (and their gradients in ``grad``, same
layout), in ``nn.RNN.parameters()`` then ``nn.Linear.parameters()`` order; ``offsets`` (int64,
length 7) holds the boundaries, :func:`param_offsets` computes them::

    w_ih (H, D) | w_hh (H, H) | b_ih (H,) | b_hh (H,) | w_out (O, H) | b_out (O,)

Optimiser state: ``state`` (2, n), ``step`` int64 (1,), ``kind`` and ``hp`` as documented in
:mod:`rnnbench.kernels.optim`; clipping treats each of the six segments as one parameter (so the
global norm is torch's norm of the per-parameter norms).

Targets choose the loss and must match the readout (time-major, as ``x``):

=====================  ===================  ======================
loss (by y's dtype)    last step            every step (per_step)
=====================  ===================  ======================
float y -> MSE         y (B, O)             y (T, B, O)
integer y -> x-entropy y (B,) class index   y (T, B)
=====================  ===================  ======================

With ``per_step`` the predictions are rows ``t*B + b`` of ``out.reshape(T*B, H) @ w_out.T``
(time-major) and the loss is the mean over all T*B rows (over T*B*O elements for MSE), which is
the value torch gives for the same predictions flattened batch-first (B*T rows).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from rnnbench.kernels.optim import (
    KINDS,
    clip_grad_norm_flat_,
    clip_grad_value_flat_,
    grad_norm_flat,
    init_state,
    make_hparams,
    optimizer_update,
)
from rnnbench.kernels.readout import (
    mse_loss_grad,
    readout_backward,
    readout_forward,
    xent_loss_grad,
)
from rnnbench.kernels.rnn import rnn_backward, rnn_forward

CLIP_NONE, CLIP_NORM, CLIP_VALUE = 0, 1, 2
_CLIPS = {None: CLIP_NONE, "none": CLIP_NONE, "norm": CLIP_NORM, "value": CLIP_VALUE}


def param_offsets(D: int, H: int, n_out: int) -> np.ndarray:
    """Boundaries (7,) of w_ih, w_hh, b_ih, b_hh, w_out, b_out in the flat parameter vector."""
    sizes = [H * D, H * H, H, H, n_out * H, n_out]
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _loss_grad(pred, y):
    raise NotImplementedError("_loss_grad is only callable from Numba-compiled code")


@overload(_loss_grad)
def _loss_grad_overload(pred, y):
    # the loss is picked at compile time from the target's dtype
    if isinstance(y, types.Array) and isinstance(y.dtype, types.Integer):
        return lambda pred, y: xent_loss_grad(pred, y.ravel())
    if isinstance(y, types.Array) and isinstance(y.dtype, types.Float):
        return lambda pred, y: mse_loss_grad(pred, y)


@njit(cache=True)
def train_step(x, y, theta, grad, offsets, H, n_out, state, step, kind, hp, per_step=False,
               clip=CLIP_NONE, clip_value=1.0, relu=False):
    """One training step; updates ``theta``, ``grad``, ``state`` and ``step`` in place.

    x (T, B, D) time-major, y: see the module table, theta / grad (n,) flat (layout above),
    offsets (7,) int64, H / n_out: hidden / output sizes, state (2, n), step (1,) int64, kind /
    hp: the optimiser (``rnnbench.kernels.optim``), per_step: readout at every step instead of
    the last one, clip: CLIP_NONE / CLIP_NORM (max_norm = clip_value) / CLIP_VALUE,
    relu: nonlinearity (tanh otherwise).

    Returns ``(loss, grad_norm)``: the loss before the update and the global L2 norm of the
    gradient before clipping. Afterwards ``grad`` holds the (clipped) gradient that was applied.
    """
    T, B, D = x.shape
    o = offsets
    w_ih = theta[o[0]: o[1]].reshape(H, D)
    w_hh = theta[o[1]: o[2]].reshape(H, H)
    b_ih = theta[o[2]: o[3]]
    b_hh = theta[o[3]: o[4]]
    w_out = theta[o[4]: o[5]].reshape(n_out, H)
    b_out = theta[o[5]: o[6]]
    if o[6] != theta.size or theta.size != grad.size:
        raise ValueError("train_step: offsets, theta and grad do not agree")

    h0 = np.zeros((B, H), dtype=x.dtype)
    out, h_n = rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, relu, False)
    hr = out.reshape(T * B, H) if per_step else h_n  # (T*B, H) time-major rows, or (B, H)
    pred = readout_forward(hr, w_out, b_out)
    loss, dpred = _loss_grad(pred, y)
    dhr, dw_out, db_out = readout_backward(hr, w_out, dpred)
    if per_step:
        grad_out = dhr.reshape(T, B, H)
        grad_hn = np.zeros((B, H), dtype=x.dtype)
    else:
        grad_out = np.zeros((T, B, H), dtype=x.dtype)
        grad_hn = dhr
    # grad_out is private here: let BPTT reuse it as scratch; per-step dh is not needed
    gr = rnn_backward(x, h0, out, w_ih, w_hh, grad_out, grad_hn, relu, False, False, True)
    grad[o[0]: o[1]] = gr[2].ravel()
    grad[o[1]: o[2]] = gr[3].ravel()
    grad[o[2]: o[3]] = gr[4]
    grad[o[3]: o[4]] = gr[5]
    grad[o[4]: o[5]] = dw_out.ravel()
    grad[o[5]: o[6]] = db_out

    if clip == CLIP_NORM:
        norm = clip_grad_norm_flat_(grad, offsets, clip_value)
    else:
        norm = grad_norm_flat(grad, offsets)
        if clip == CLIP_VALUE:
            clip_grad_value_flat_(grad, clip_value)
    optimizer_update(kind, theta, grad, state, step, hp)
    return loss, norm


_PARAM_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out")


class NumbaTrainer:
    """Parameters, optimiser state and configuration for :func:`train_step`.

    ``step(x, y) -> float`` runs one training step and returns the loss (before the update).
    ``x`` is (T, B, D), or (B, T, D) with ``batch_first=True`` (then per-step targets are
    (B, T, ...) too and are transposed to time-major here, copies included in the step's cost).
    ``loss``: "mse" (float targets) or "xent" (integer class targets); ``readout``: "last" or
    "every"; ``clip``: None, "norm" (max_norm = clip_value) or "value"; ``optimizer``: "sgd",
    "adam", "rmsprop", "adagrad" with torch's defaults overridden by ``lr`` and ``opt_kwargs``.
    Parameter views (into the flat vector ``theta``): ``w_ih, w_hh, b_ih, b_hh, w_out, b_out``.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, *,
                 optimizer: str = "adam", lr: float | None = None, loss: str = "mse",
                 readout: str = "last", clip: str | None = None, clip_value: float = 1.0,
                 nonlinearity: str = "tanh", dtype=np.float32, batch_first: bool = False,
                 seed: int = 0, **opt_kwargs):
        if loss not in ("mse", "xent"):
            raise ValueError(f"loss must be 'mse' or 'xent', not {loss!r}")
        if readout not in ("last", "every"):
            raise ValueError(f"readout must be 'last' or 'every', not {readout!r}")
        if clip not in _CLIPS:
            raise ValueError(f"clip must be None, 'norm' or 'value', not {clip!r}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, not {self.dtype}")
        self.D, self.H, self.O = int(input_size), int(hidden_size), int(output_size)
        self.loss, self.readout, self.batch_first = loss, readout, bool(batch_first)
        self.clip, self.clip_value = _CLIPS[clip], float(clip_value)
        self.relu = nonlinearity == "relu"
        if lr is not None:
            opt_kwargs["lr"] = lr
        self.optimizer = optimizer.lower()
        self.kind, self.hp = make_hparams(self.optimizer, **opt_kwargs)
        self.offsets = param_offsets(self.D, self.H, self.O)
        n = int(self.offsets[-1])
        # torch's initialisation: nn.RNN and nn.Linear(H, O) both draw U(-1/sqrt(H), 1/sqrt(H))
        bound = 1.0 / np.sqrt(self.H) if self.H > 0 else 0.0
        rng = np.random.default_rng(seed)
        self.theta = rng.uniform(-bound, bound, n).astype(self.dtype)
        self.grad = np.zeros(n, dtype=self.dtype)
        self.state, self.step_count = init_state(n, self.dtype, self.kind)
        self.last_grad_norm = float("nan")

    @classmethod
    def from_torch(cls, rnn, head, optimizer_name: str, lr: float | None = None, **kwargs):
        """Copy the weights of ``rnn`` (nn.RNN: 1 layer, unidirectional, bias) and ``head``
        (nn.Linear(H, O)); dtype, nonlinearity and batch_first follow ``rnn``. ``kwargs`` go to
        the constructor (loss, readout, clip, clip_value, optimiser hyper-parameters)."""
        if rnn.num_layers != 1 or rnn.bidirectional or not rnn.bias:
            raise ValueError("NumbaTrainer supports one unidirectional RNN layer with biases")
        if getattr(rnn, "proj_size", 0):
            raise ValueError("NumbaTrainer does not support proj_size")
        if head.in_features != rnn.hidden_size or head.bias is None:
            raise ValueError("head must be nn.Linear(hidden_size, O) with a bias")
        dtype = {"torch.float32": np.float32, "torch.float64": np.float64}.get(
            str(rnn.weight_ih_l0.dtype))
        if dtype is None:
            raise ValueError(f"unsupported dtype {rnn.weight_ih_l0.dtype}")
        kwargs.setdefault("nonlinearity", rnn.nonlinearity)
        kwargs.setdefault("batch_first", rnn.batch_first)
        self = cls(rnn.input_size, rnn.hidden_size, head.out_features, optimizer=optimizer_name,
                   lr=lr, dtype=dtype, **kwargs)
        src = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, head.weight,
               head.bias]
        for name, t in zip(_PARAM_NAMES, src, strict=True):
            getattr(self, name)[...] = t.detach().cpu().numpy()
        return self

    def _view(self, k: int, shape):
        return self.theta[self.offsets[k]: self.offsets[k + 1]].reshape(shape)

    w_ih = property(lambda s: s._view(0, (s.H, s.D)))
    w_hh = property(lambda s: s._view(1, (s.H, s.H)))
    b_ih = property(lambda s: s._view(2, (s.H,)))
    b_hh = property(lambda s: s._view(3, (s.H,)))
    w_out = property(lambda s: s._view(4, (s.O, s.H)))
    b_out = property(lambda s: s._view(5, (s.O,)))

    def params(self) -> dict[str, np.ndarray]:
        """Name -> view into ``theta`` (w_ih, w_hh, b_ih, b_hh, w_out, b_out)."""
        return {name: getattr(self, name) for name in _PARAM_NAMES}

    def grads(self) -> dict[str, np.ndarray]:
        """Name -> view into ``grad``: the (clipped) gradient applied by the last step."""
        shapes = [(self.H, self.D), (self.H, self.H), (self.H,), (self.H,), (self.O, self.H),
                  (self.O,)]
        o = self.offsets
        return {name: self.grad[o[k]: o[k + 1]].reshape(shapes[k])
                for k, name in enumerate(_PARAM_NAMES)}

    def _prepare(self, x, y):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim != 3:
            raise ValueError(f"expected a 3-d input, got shape {x.shape}")
        per_step = self.readout == "every"
        if self.batch_first:
            x = x.transpose(1, 0, 2)
            if per_step:
                y = y.swapaxes(0, 1)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if self.loss == "mse":
            y = np.ascontiguousarray(y, dtype=self.dtype)
        else:
            if not np.issubdtype(y.dtype, np.integer):
                raise ValueError("cross-entropy targets must be integer class indices")
            y = np.ascontiguousarray(y, dtype=np.int64)
        if x.shape[2] != self.D:
            raise ValueError(f"expected x with {self.D} features, got shape {x.shape}")
        T, B = x.shape[0], x.shape[1]
        lead = (T, B) if per_step else (B,)
        want = lead + ((self.O,) if self.loss == "mse" else ())
        if y.shape != want:
            raise ValueError(f"expected time-major target of shape {want}, got {y.shape}")
        return x, y

    def step(self, x, y) -> float:
        """One training step on x, y (see the class doc); returns the loss before the update."""
        x, y = self._prepare(x, y)
        loss, norm = train_step(x, y, self.theta, self.grad, self.offsets, self.H, self.O,
                                self.state, self.step_count, self.kind, self.hp,
                                self.readout == "every", self.clip, self.clip_value, self.relu)
        self.last_grad_norm = float(norm)
        return float(loss)

    def copy_to_torch(self, rnn, head) -> None:
        """Write the current parameters into ``rnn`` / ``head`` (same layout as from_torch)."""
        import torch

        dst = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, head.weight,
               head.bias]
        with torch.no_grad():
            for name, t in zip(_PARAM_NAMES, dst, strict=True):
                t.copy_(torch.from_numpy(getattr(self, name).copy()))


__all__ = ["CLIP_NONE", "CLIP_NORM", "CLIP_VALUE", "KINDS", "NumbaTrainer", "param_offsets",
           "train_step"]
