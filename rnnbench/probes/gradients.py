"""Gradient-through-time probes: how dL/dh_t shrinks (or grows) with the distance to the loss.

The test of the lecture claim "vanilla RNN gradients vanish or explode; gates fix it". For a
probe batch, :func:`state_gradients` gives ||dL/dh_t|| for every step, layer and direction
(torch cores through the unrolled graph of :mod:`rnnbench.probes.unrolled`, Numba cores through
their own hand-written BPTT); :func:`run_probe` adds the derived figures (decay per step,
horizons, recurrent spectra, saturation, the Pascanu et al. bound on the measured per-step
ratios of probes/bound.py) in one JSON-friendly dict; :func:`make_probe_callback` runs it at
checkpoints during `train.fit`.

Lag convention: lag = number of steps between h_t and the step where its direction ends (the
forward direction ends at t = T-1: lag = T-1-t; the backward one at t = 0: lag = t).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from rnnbench.probes.bound import bound_from_grads, qualifying
from rnnbench.probes.schema import Loss, ProbeConfig
from rnnbench.probes.unrolled import (
    cell_kind,
    direction_name,
    recurrent_spectra,
    saturation,
    unrolled_forward,
)
from rnnbench.tasks.base import TaskSpec
from rnnbench.training.encode import loss_fn

FLOOR = 1e-12  # ratios at or below this are numerical noise and left out of the decay fit


def _readout(model, out, h_n) -> torch.Tensor:
    """The model's own head on given core outputs (the readout rule lives in RecurrentNet)."""
    return model.read_out(out, h_n)


def _objective(model, spec: TaskSpec, y: torch.Tensor, loss: Loss):
    def objective(out, h_n):
        pred = _readout(model, out, h_n)  # (B, O) for readout 'last', (B, T, O) for 'all'
        if loss == "final" and model.readout == "all":
            return loss_fn(spec, pred[:, -1], y[:, -1])  # the last step's prediction only
        return loss_fn(spec, pred, y)
    return objective


def _floats(a) -> list[float | None]:
    """JSON-friendly: non-finite values become None."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(a, dtype=np.float64)]


def _curve(grad: torch.Tensor, direction: int) -> dict[str, list[float | None]]:
    """grad (B, T, H) total dL/dh_t -> {'norm', 'ratio'} indexed by lag."""
    norm = grad.double().norm(dim=2).mean(dim=0).cpu().numpy()  # (T,): batch mean of L2 over H
    norm = norm if direction else norm[::-1]  # forward direction: lag 0 is t = T-1
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = norm / norm[0] if norm[0] > 0 else np.full_like(norm, np.nan)
    return {"norm": _floats(norm), "ratio": _floats(ratio)}


def state_gradients(model, spec: TaskSpec, x: torch.Tensor, y: torch.Tensor,
                    loss: Loss = "task", *, nonlinearity: str | None = None) -> dict:
    """||dL/dh_t|| against lag for every layer and direction of a RecurrentNet.

    x (B, T, D) model inputs, y encoded targets. loss 'task': the task's loss (tasks.base.loss_fn)
    through the model's head; 'final': the loss of the last step's prediction only (for readout
    'last' it is the task loss). dL/dh_t is the total derivative (recurrent path included).
    `nonlinearity` overrides an Elman core's activation ('identity': linear recurrence).

    Returns {'loss', 'loss_value', 'method', 'curves', 'cell_curves'}; curves['l0_fwd'] is
    {'norm': [...], 'ratio': [...]}, T values indexed by lag (module docstring):
      norm[lag]  = mean over the batch of the per-example L2 norm over H of dL/dh_t, where L is
                   the batch-mean loss (so each example's gradient carries a 1/B factor);
      ratio[lag] = norm[lag] / norm[0], dimensionless; None everywhere if norm[0] == 0 (e.g. the
                   backward direction under loss 'final' with readout 'all': the last prediction
                   sees it after one step only). Non-finite values are None.
    cell_curves: the same for the LSTM cell state c_t (torch LSTM cores only), else {}.
    """
    return _summary(loss, *raw_state_gradients(model, spec, x, y, loss, nonlinearity=nonlinearity))


def raw_state_gradients(model, spec: TaskSpec, x: torch.Tensor, y: torch.Tensor,
                        loss: Loss = "task", *, nonlinearity: str | None = None):
    """(loss value, method, grads, cell_grads): grads[(layer, direction)] is the (B, T, H)
    total dL/dh_t by sequence position; cell_grads the same for an LSTM's c_t (else {})."""
    core, objective = model.core, _objective(model, spec, y, loss)
    grads, cell_grads = {}, {}
    if hasattr(core, "forward_with_state_grads") and nonlinearity is None:
        sg = core.forward_with_state_grads(x, loss_fn=objective)  # its own hand-written BPTT
        value, method = sg.loss, "numba_bptt"
        for k in range(sg.dh.shape[0]):
            for d in range(sg.dh.shape[1]):
                grads[(k, d)] = sg.dh[k, d]  # (B, T, H)
    else:
        method, trace = "torch_unrolled", {}
        with torch.enable_grad():
            x = x.detach()
            out, h_n, states = unrolled_forward(core, x, nonlinearity=nonlinearity, trace=trace)
            value = objective(out, h_n)
            keys = list(states)
            cells = [key for key in keys if "c" in trace[key]]
            flat = [h for key in keys for h in states[key]]
            flat += [c for key in cells for c in trace[key]["c"]]
            got = torch.autograd.grad(value, flat, allow_unused=True)
        got = [torch.zeros_like(t) if g is None else g for g, t in zip(got, flat, strict=True)]
        T = x.shape[1]
        for i, key in enumerate(keys + cells):
            target = grads if i < len(keys) else cell_grads
            target[key] = torch.stack(got[i * T:(i + 1) * T], dim=1)  # (B, T, H)
    return value, method, grads, cell_grads


def _summary(loss: Loss, value, method: str, grads: dict, cell_grads: dict) -> dict:
    return {
        "loss": loss, "loss_value": float(value.detach()), "method": method,
        "curves": {direction_name(*key): _curve(g, key[1]) for key, g in grads.items()},
        "cell_curves": {direction_name(*key): _curve(g, key[1]) for key, g in cell_grads.items()},
    }


# ---------------------------------------------------------------- derived figures
def _array(ratio) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in ratio], dtype=np.float64)


def decay_factor(ratio, floor: float = FLOOR) -> float | None:
    """Geometric decay per step: 10**slope of the least-squares line log10(ratio) ~ lag, fitted
    over lags whose ratio is finite and > floor. < 1 vanishing, > 1 exploding; None with fewer
    than two such lags."""
    r = _array(ratio)
    lags = np.flatnonzero(np.isfinite(r) & (r > floor))
    if len(lags) < 2:
        return None
    slope = np.polyfit(lags.astype(np.float64), np.log10(r[lags]), 1)[0]
    return float(10.0 ** slope)


def horizon(ratio, threshold: float) -> int | None:
    """The first lag (in steps) whose ratio is below `threshold`; None if none within T."""
    r = _array(ratio)
    below = np.flatnonzero(np.isfinite(r) & (r < threshold))
    return int(below[0]) if len(below) else None


def curve_figures(curve: dict, thresholds: list[float]) -> dict[str, float | int | None]:
    """{'decay_factor', 'horizon@<thr>' for each threshold} of one curve."""
    out: dict[str, float | int | None] = {"decay_factor": decay_factor(curve["ratio"])}
    for thr in thresholds:
        out[f"horizon@{thr:g}"] = horizon(curve["ratio"], thr)
    return out


# ---------------------------------------------------------------- the probe
def run_probe(model, spec: TaskSpec, x: torch.Tensor, y: torch.Tensor, cfg: ProbeConfig, *,
              step: int = 0, checkpoint: float = 0.0) -> dict:
    """Every probe figure for the first cfg.batch_size examples of (x, y), in one dict.

    'figures' is flat, each key '<what>.<layer_direction>.<figure>':
      '<loss>.l0_fwd.decay_factor'   factor per step (see decay_factor), dimensionless
      '<loss>.l0_fwd.horizon@0.001'  lag in steps where ratio first < 0.001 (None: not within T)
      'l0_fwd.w_hh[_<gate>].sigma_max' / '.spectral_radius'  (see unrolled.recurrent_spectra)
      'l0_fwd.saturated_fraction', 'l0_fwd.gates_saturated_fraction'  (unrolled.saturation)
      'bound.applicable', 'bound.holds', 'bound.max_ratio'  (probes.bound: the largest measured
                                     ||dL/dh_{t-1}|| / ||dL/dh_t|| over its bound)
    'gradients' holds the full curves per loss; 'bound' the full bound check, on the gradients
    of loss 'final' where probed (the loss that reads only the last step), else the first.
    """
    p = next(model.parameters())
    x = x[:cfg.batch_size].detach().to(device=p.device, dtype=p.dtype)
    y = y[:cfg.batch_size].detach().to(device=p.device)
    y = y if not y.is_floating_point() else y.to(p.dtype)
    raw = {loss: raw_state_gradients(model, spec, x, y, loss) for loss in cfg.losses}
    grads = {loss: _summary(loss, *r) for loss, r in raw.items()}
    figures: dict = {}
    for loss, g in grads.items():
        for name, curve in g["curves"].items():
            for key, v in curve_figures(curve, cfg.thresholds).items():
                figures[f"{loss}.{name}.{key}"] = v
    figures.update(recurrent_spectra(model.core))
    figures.update(saturation(model.core, x))
    bound = _bound(model, raw) if cfg.bound_check else {"applicable": False,
                                                         "reason": "disabled"}
    figures["bound.applicable"] = bound["applicable"]
    if bound["applicable"]:
        figures["bound.holds"], figures["bound.max_ratio"] = bound["holds"], bound["max_ratio"]
    return {"step": int(step), "checkpoint": float(checkpoint), "cell": cell_kind(model.core),
            "seq_len": int(x.shape[1]), "batch": int(x.shape[0]),
            "thresholds": list(cfg.thresholds), "figures": figures, "gradients": grads,
            "bound": bound}


def _bound(model, raw: dict) -> dict:
    """The Pascanu bound on the measured gradients of one probed loss (probes.bound)."""
    loss = "final" if "final" in raw else next(iter(raw))
    directions, steps = qualifying(model, loss)
    return {"loss": loss, **bound_from_grads(model.core, raw[loss][2], directions, steps)}


def probe_at_init(model, spec: TaskSpec, x: torch.Tensor, y: torch.Tensor,
                  cfg: ProbeConfig) -> dict:
    """The probe of the untrained model (checkpoint 0, step 0); call it before fit."""
    return run_probe(model, spec, x, y, cfg, step=0, checkpoint=0.0)


class ProbeCallback:
    """fit's on_epoch callback: probes once training has passed each checkpoint.

    A checkpoint fraction c > 0 is due at optimiser step ceil(c * total_steps); fit calls back
    after each validation round, so it runs at the first round ending at or after that step
    (result 'step' is the actual step). Several checkpoints passed in one round share one probe.
    The round's per-step global gradient norms (fit's series['grad_norm'], pre-clipping) are
    summarised into 'train_grad_norm', not recomputed. Call finish(step) after fit to probe the
    checkpoints an early stop skipped (marked 'early_stop': True).
    """

    def __init__(self, model, spec, x, y, cfg: ProbeConfig, total_steps: int):
        self.model, self.spec, self.x, self.y, self.cfg = model, spec, x, y, cfg
        self.results: list[dict] = []
        due = {c: max(1, math.ceil(c * total_steps - 1e-9)) for c in sorted(set(cfg.checkpoints))}
        self.at_init = due.pop(0.0, None) is not None
        self.pending = due  # fraction -> step at which it is due

    def start(self) -> None:
        """Probe the untrained model if checkpoint 0 is asked for: fit's on_start."""
        if self.at_init:
            self.results.append(probe_at_init(self.model, self.spec, self.x, self.y, self.cfg))

    def _probe(self, fractions: list[float], step: int, extra: dict) -> None:
        res = run_probe(self.model, self.spec, self.x, self.y, self.cfg, step=step)
        for c in fractions:
            self.results.append({**res, "checkpoint": c, **extra})
            del self.pending[c]

    def __call__(self, row: dict, series: dict[str, list[float]]) -> None:
        step = int(row["step"])
        fractions = [c for c, s in self.pending.items() if step >= s]
        if fractions:
            norms = np.asarray(series.get("grad_norm", []), dtype=np.float64)
            summary = ({"steps": len(norms), "median": float(np.median(norms)),
                        "max": float(norms.max()), "last": float(norms[-1])} if len(norms) else {})
            self._probe(fractions, step, {"train_grad_norm": summary})

    def finish(self, step: int) -> None:
        if self.pending:
            self._probe(list(self.pending), step, {"early_stop": True})


def make_probe_callback(model, spec: TaskSpec, x_probe: torch.Tensor, y_probe: torch.Tensor,
                        cfg: ProbeConfig, total_steps: int) -> tuple[ProbeCallback, list[dict]]:
    """(callback for fit(on_epoch=...), the list it appends probe results to). Create it before
    fit: checkpoint 0 is probed at once, on the untrained model."""
    cb = ProbeCallback(model, spec, x_probe, y_probe, cfg, total_steps)
    cb.start()
    return cb, cb.results
