"""The per-step bound of Pascanu, Mikolov & Bengio (2013) tested on MEASURED gradients.

"On the difficulty of training recurrent neural networks" (ICML, section 3.1): for an Elman cell
h_t = f(W_ih x_t + W_hh h_{t-1} + b), at a step where the loss adds nothing to h_{t-1} directly,
dL/dh_{t-1} = W_hh^T diag(f'(a_t)) dL/dh_t, so

    ||dL/dh_{t-1}|| / ||dL/dh_t|| <= sigma_max(W_hh) * max|f'|        (max|f'| = 1: tanh, relu).

The ratio is taken per example from the probe's own total dL/dh_t (torch autograd through the
unrolled graph, or the Numba BPTT), so a wrong gradient, or a step that does get a direct term,
shows as a ratio above its bound.

Which steps qualify: h_{t-1} must reach the loss only through h_t. That holds in the TOP layer
only (a lower layer's h_t also feeds the layer above at every step), and only for directions
whose states the loss reads at the direction's last step alone: with readout 'last' (the head
reads h_n) every top-layer direction; with readout 'all' and loss 'final' (the last step's
prediction, out[:, T-1]) the forward direction; with readout 'all' and the task loss (every
step's prediction) none. In lags (gradients.py: lag 0 is the direction's last step) the tested
ratios are norm(lag k) / norm(lag k-1), k = 1..T-1.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from rnnbench.probes.unrolled import cell_kind, direction_name

GAMMA = {"rnn_tanh": 1.0, "rnn_relu": 1.0}  # max |f'| of the Elman activations
FLOOR = 1e-12  # a ratio whose denominator is below FLOOR x the example's lag-0 norm is noise
EPS_FACTOR = 1e3  # holds within 1e3 machine epsilons of the probe's dtype (rounding of norms)


def qualifying(model, loss: str) -> tuple[list[tuple[int, int]], str]:
    """((layer, direction) pairs whose lags 1..T-1 qualify, in words which and why)."""
    core = model.core
    top, dirs = core.num_layers - 1, (2 if core.bidirectional else 1)
    readout = getattr(model, "readout", None)
    if readout == "last":
        return ([(top, d) for d in range(dirs)],
                f"lags 1..T-1 of the top layer's {'both directions' if dirs == 2 else 'states'} "
                "(the head reads h_n only)")
    if readout == "all" and loss == "final":
        return [(top, 0)], ("lags 1..T-1 of the top layer's forward direction (the loss reads "
                            "the last step's output only)")
    return [], f"none: readout {readout!r} with loss {loss!r} reads h_t at every step"


def _weights_hh(core, layer: int, direction: int) -> torch.Tensor:
    return getattr(core, f"weight_hh_l{layer}" + ("_reverse" if direction else ""))


def _lag_norms(grad: torch.Tensor, direction: int) -> np.ndarray:
    """(B, T, H) dL/dh_t indexed by t -> (B, T) per-example L2 norms indexed by lag."""
    norm = grad.double().norm(dim=2).detach().cpu().numpy()
    return norm if direction else norm[:, ::-1]


def bound_from_grads(core, grads: dict[tuple[int, int], torch.Tensor],
                     directions: list[tuple[int, int]], steps: str) -> dict:
    """The bound tested on measured gradients: grads[(layer, direction)] (B, T, H) total dL/dh_t
    by sequence position, `directions` those that qualify (see `qualifying`), `steps` in words.

    Returns 'applicable' (False with 'reason' for gated cells or when no direction qualifies),
    'holds', 'max_ratio' (largest observed ratio / its bound over every qualifying example and
    step), 'tested' (how many ratios), 'steps', 'tolerance', and per direction 'sigma_max',
    'gamma', 'bound' and 'lag_max_ratio' (max over the batch of ratio / bound, by lag k; None
    where no example's ratio counted)."""
    kind = cell_kind(core)
    if kind not in GAMMA:
        return {"applicable": False, "reason": f"{kind}: the bound is stated for Elman cells"}
    if not directions:
        return {"applicable": False, "reason": f"no step qualifies ({steps})"}
    dtype = next(core.parameters()).dtype
    tol = EPS_FACTOR * torch.finfo(dtype).eps
    res: dict = {"applicable": True, "steps": steps, "tolerance": tol}
    worst, tested = -math.inf, 0
    for layer, direction in directions:
        sigma = float(torch.linalg.matrix_norm(_weights_hh(core, layer, direction).detach()
                                               .double(), ord=2))
        bound = sigma * GAMMA[kind]
        n = _lag_norms(grads[(layer, direction)], direction)  # (B, T)
        num, den = n[:, 1:], n[:, :-1]
        ok = np.isfinite(num) & np.isfinite(den) & (den > FLOOR * n[:, :1])
        with np.errstate(divide="ignore", invalid="ignore"):
            over = np.where(ok, num / den / bound, np.nan)
        lag_max = [None] + [float(np.nanmax(c)) if np.isfinite(c).any() else None
                            for c in over.T]
        res[direction_name(layer, direction)] = {"sigma_max": sigma, "gamma": GAMMA[kind],
                                                 "bound": bound, "lag_max_ratio": lag_max}
        tested += int(ok.sum())
        if ok.any():
            worst = max(worst, float(np.nanmax(over)))
    if not tested:
        return {"applicable": False, "reason": f"every qualifying gradient is zero ({steps})"}
    res.update(max_ratio=worst, tested=tested, holds=bool(worst <= 1 + tol))
    return res
