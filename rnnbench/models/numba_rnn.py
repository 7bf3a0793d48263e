"""``NumbaRNN``: a drop-in ``torch.nn.RNN`` (batch_first=True) whose forward pass and BPTT run in
the hand-written Numba kernels of :mod:`rnnbench.kernels.rnn`.

Each (layer, direction) is one ``torch.autograd.Function`` call, so ordinary torch training code
(``loss.backward()``, gradient clipping, optimisers) works unchanged. CPU only.
"""

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from rnnbench.kernels.rnn import rnn_backward, rnn_forward


def _np(t):
    return t.detach().contiguous().numpy()


class _RNNLayer(torch.autograd.Function):
    """One layer, one direction. x (T, B, D) time-major, h0 (B, H) -> out (T, B, H), h_n (B, H).

    ``sink``: None, or a dict in which backward stores the per-step dL/dh_t (T, B, H) under
    ``key``.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, relu, reverse, sink, key):
        x, h0 = x.contiguous(), h0.contiguous()
        out, h_n = rnn_forward(_np(x), _np(h0), _np(w_ih), _np(w_hh), _np(b_ih), _np(b_hh),
                               relu, reverse)
        out, h_n = torch.from_numpy(out), torch.from_numpy(h_n)
        # saved as tensors so that autograd's version check catches in-place edits before backward
        ctx.save_for_backward(x, h0, out, w_ih, w_hh)
        ctx.flags = (relu, reverse)
        ctx.sink, ctx.key = sink, key
        return out, h_n

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_hn):
        xn, h0n, out, w_ihn, w_hhn = (_np(t) for t in ctx.saved_tensors)
        relu, reverse = ctx.flags
        # grad_out usually arrives as a strided view (batch-first transpose, torch.cat slices);
        # its contiguous copy is then private to us and the kernel may reuse it as scratch
        private = not grad_out.is_contiguous()
        grads = rnn_backward(xn, h0n, out, w_ihn, w_hhn, _np(grad_out), _np(grad_hn), relu,
                             reverse, ctx.sink is not None, private)
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh, dh = (torch.from_numpy(g) for g in grads)
        if ctx.sink is not None:
            ctx.sink[ctx.key] = dh
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None, None, None


class StateGrads(NamedTuple):
    """Result of :meth:`NumbaRNN.forward_with_state_grads` (all tensors detached).

    out (B, T, dirs*H), h_n (L*dirs, B, H): as ``forward``.
    dh (L, dirs, B, T, H): total dL/dh_t of every layer, direction and step; ``t`` is the position
        in the sequence for both directions; it includes the direct gradient (from the output,
        from the next layer and from h_n) and the recurrent path through later-visited steps.
    dx (B, T, D), dh0 (L*dirs, B, H): gradients w.r.t. the inputs.
    param_grads: parameter name -> gradient (not accumulated into ``.grad``).
    loss: the scalar returned by ``loss_fn``, or None.
    """

    out: torch.Tensor
    h_n: torch.Tensor
    dh: torch.Tensor
    dx: torch.Tensor
    dh0: torch.Tensor
    param_grads: dict
    loss: torch.Tensor | None


class NumbaRNN(nn.Module):
    """Elman RNN with the interface of ``torch.nn.RNN(..., batch_first=True, bias=True)``.

    Always batch-first: ``forward(x (B, T, D), h0 (L*dirs, B, H) or None)`` returns
    ``(out (B, T, dirs*H), h_n (L*dirs, B, H))``; an unbatched ``x (T, D)`` with
    ``h0 (L*dirs, H)`` is accepted as well. Parameters carry torch's names, shapes, order and
    initialisation, so ``load_state_dict`` works in both directions and the same torch seed gives
    the same weights as ``nn.RNN``. Computation dtype follows the parameters (use ``.double()``
    for float64); ``x`` and ``h0`` must have the same dtype. CPU tensors only.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh",
                 bidirectional=False, *, bias=True, batch_first=True, dropout=0.0, dtype=None):
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}, expected 'tanh' or 'relu'")
        if not bias or not batch_first or dropout:
            raise ValueError("NumbaRNN supports only bias=True, batch_first=True, dropout=0")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.nonlinearity, self.bidirectional = nonlinearity, bool(bidirectional)
        self.bias, self.batch_first, self.dropout = True, True, 0.0
        dirs = 2 if bidirectional else 1
        kw = {"dtype": dtype}
        # same registration order as nn.RNN: layer, direction, then w_ih, w_hh, b_ih, b_hh
        for k in range(num_layers):
            d_in = input_size if k == 0 else hidden_size * dirs
            for d in range(dirs):
                sfx = f"l{k}" + ("_reverse" if d else "")
                shapes = {"weight_ih": (hidden_size, d_in), "weight_hh": (hidden_size, hidden_size),
                          "bias_ih": (hidden_size,), "bias_hh": (hidden_size,)}
                for name, shape in shapes.items():
                    self.register_parameter(f"{name}_{sfx}", nn.Parameter(torch.empty(shape, **kw)))
        self.reset_parameters()

    def reset_parameters(self):
        # nn.RNN: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), drawn in registration order
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            nn.init.uniform_(p, -stdv, stdv)

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def _layer_params(self, k, d):
        sfx = f"l{k}" + ("_reverse" if d else "")
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return [getattr(self, f"{n}_{sfx}") for n in names]

    def _check(self, x, h0):
        tensors = [x] + ([h0] if h0 is not None else []) + list(self.parameters())
        if any(t.device.type != "cpu" for t in tensors):
            raise ValueError("NumbaRNN runs on CPU only; got a tensor on a non-CPU device")
        dtype = self.weight_ih_l0.dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"NumbaRNN supports float32 and float64, not {dtype}")
        if x.dtype != dtype or (h0 is not None and h0.dtype != dtype):
            raise ValueError(f"input dtype {x.dtype} does not match parameter dtype {dtype}")
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"expected x of shape (B, T, {self.input_size}), got {tuple(x.shape)}")
        want = (self.num_layers * self.num_directions, x.shape[0], self.hidden_size)
        if h0 is not None and tuple(h0.shape) != want:
            raise ValueError(f"expected h0 of shape {want}, got {tuple(h0.shape)}")

    def _run(self, x, h0, sink=None):
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(0)
            h0 = None if h0 is None else h0.unsqueeze(1)
        self._check(x, h0)
        B, T, _ = x.shape
        dirs, relu = self.num_directions, self.nonlinearity == "relu"
        if h0 is None:
            h0 = x.new_zeros(self.num_layers * dirs, B, self.hidden_size)
        layer_in = x.transpose(0, 1).contiguous()  # (T, B, D): the kernels are time-major
        h_n = []
        for k in range(self.num_layers):
            outs = []
            for d in range(dirs):
                o, hk = _RNNLayer.apply(layer_in, h0[k * dirs + d], *self._layer_params(k, d),
                                        relu, d == 1, sink, (k, d))
                outs.append(o)
                h_n.append(hk)
            layer_in = outs[0] if dirs == 1 else torch.cat(outs, dim=2)  # (T, B, dirs*H)
        out, h_n = layer_in.transpose(0, 1), torch.stack(h_n)  # (B, T, dirs*H), (L*dirs, B, H)
        if unbatched:
            out, h_n = out.squeeze(0), h_n.squeeze(1)
        return out, h_n

    def precompile(self) -> float:
        """Compile the kernels for this module's dtype, or load them from Numba's on-disk cache
        (NUMBA_CACHE_DIR), before any timed work; return the seconds it took. Parameters and
        their .grad are left untouched."""
        start = time.perf_counter()
        x = torch.zeros(2, 2, self.input_size, dtype=self.weight_ih_l0.dtype, requires_grad=True)
        out, _ = self._run(x, None)
        torch.autograd.grad(out.sum(), x)  # runs BPTT without accumulating into .grad
        return time.perf_counter() - start

    def forward(self, x, h0=None):
        """x (B, T, D), h0 (L*dirs, B, H) or None (zeros) -> (out (B, T, dirs*H), h_n)."""
        return self._run(x, h0)

    def forward_with_state_grads(self, x, h0=None, grad_out=None, grad_hn=None,
                                 loss_fn: Callable | None = None) -> StateGrads:
        """Forward plus BPTT that also returns dL/dh_t for every layer, direction and step.

        The backward pass is seeded either by ``loss_fn(out, h_n) -> scalar`` or by explicit
        ``grad_out`` = dL/d(out) (B, T, dirs*H) and ``grad_hn`` = dL/d(h_n) (L*dirs, B, H) (None
        means zeros). Batched input only. Nothing is accumulated into parameters' ``.grad``.
        See :class:`StateGrads` for the returned shapes.
        """
        if loss_fn is not None and (grad_out is not None or grad_hn is not None):
            raise ValueError("give either loss_fn or grad_out/grad_hn, not both")
        x = x.detach().requires_grad_(True)
        if h0 is None:
            L = self.num_layers * self.num_directions
            h0 = x.new_zeros(L, x.shape[0], self.hidden_size)
        h0 = h0.detach().requires_grad_(True)
        names, params = zip(*self.named_parameters(), strict=True)
        sink = {}
        with torch.enable_grad():
            out, h_n = self._run(x, h0, sink)
            loss = None
            if loss_fn is not None:
                loss = loss_fn(out, h_n)
                roots, seeds = [loss], None
            else:
                roots = [out, h_n]
                seeds = [torch.zeros_like(out) if grad_out is None else grad_out,
                         torch.zeros_like(h_n) if grad_hn is None else grad_hn]
            grads = torch.autograd.grad(roots, [x, h0, *params], seeds, allow_unused=True)
        dirs = self.num_directions
        T, B = out.shape[1], out.shape[0]
        zero = x.new_zeros(T, B, self.hidden_size)  # a (layer, direction) the loss never reached
        dh = torch.stack([torch.stack([sink.get((k, d), zero) for d in range(dirs)])
                          for k in range(self.num_layers)])  # (L, dirs, T, B, H)
        grads = [torch.zeros_like(t) if g is None else g
                 for g, t in zip(grads, [x, h0, *params], strict=True)]
        return StateGrads(
            out=out.detach(), h_n=h_n.detach(), dh=dh.transpose(2, 3).contiguous(),
            dx=grads[0], dh0=grads[1], param_grads=dict(zip(names, grads[2:], strict=True)),
            loss=None if loss is None else loss.detach())


def compile_kernels(dtype: str = "float32") -> float:
    """Compile, or load from NUMBA_CACHE_DIR, every Numba kernel the pipeline runs in `dtype`:
    NumbaRNN's forward and BPTT (training, and the probes' state gradients), and the linear
    scan of the state-free cells' "numba" mode (rnnbench.kernels.scan). Numba specialises on
    types, not values, so tiny shapes compile what every shape uses. Returns the seconds it
    took."""
    from rnnbench.models.minimal import MinRNN

    start = time.perf_counter()
    NumbaRNN(3, 4, dtype=getattr(torch, dtype)).precompile()
    MinRNN("mingru", 3, 4, mode="numba").to(getattr(torch, dtype)).precompile()
    return time.perf_counter() - start
