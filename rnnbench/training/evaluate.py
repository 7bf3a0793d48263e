"""Evaluations of a trained model beyond its test split, recorded in every run's result.json:

- train_split_metrics: the task's metrics on (the first rows of) the training split, so that
  every run has a train/validation gap (the overfitting claim);
- length_points: the trained weights loaded into the network built for the task at 2x and 4x
  its length T (tasks.base.LENGTH_FACTORS, Task.at_length) and tested on fresh data there: the
  parameter count cannot change with T (the load would fail) and the metric may;
- memory_gates: the keep-gate statistics over the task's memory spans
  (rnnbench.probes.gates) for gated cells.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnbench.models.build import build_model
from rnnbench.models.recurrent import RecurrentNet
from rnnbench.probes.gates import keep_gate_stats
from rnnbench.tasks.base import LENGTH_FACTORS, Split, Task, TaskSpec
from rnnbench.training.encode import encode_inputs
from rnnbench.training.fit import predict

GATE_EXAMPLES = 128  # test examples the keep-gate statistics run on


def _batch(spec: TaskSpec, train_cfg) -> int:
    """The evaluation batch fit uses: a stateful task's streams, else at least 256."""
    return spec.streams if spec.stateful else max(train_cfg.batch_size, 256)


def _place(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


def train_split_metrics(model, task: Task, task_cfg, spec: TaskSpec, splits: dict[str, Split],
                        train_cfg) -> dict:
    """{'rows', <metric>: value, ...}: the task's metrics of the trained model on the first
    len(val) training rows (the whole split when smaller), so the cost is one validation."""
    device, dtype = _place(model)
    n = min(len(splits["train"]["y"]), len(splits["val"]["y"]))
    x = encode_inputs(splits["train"]["x"][:n], spec, dtype).to(device)
    pred = predict(model, x, _batch(spec, train_cfg))
    return {"rows": n, **task.metrics(task_cfg, pred, splits["train"]["y"][:n])}


def length_points(model, model_cfg, task: Task, task_cfg, spec: TaskSpec, data_seed: int,
                  train_cfg) -> dict | None:
    """The trained model at LENGTH_FACTORS x T, or None for a task without a length:
    {'key', 'trained', 'n_params', 'same_parameters', 'reason', 'points': [{'factor', 'length',
    'n_params', 'metrics', 'baseline', 'solved'}]}. same_parameters is False (and the points
    stop) when the trained weights do not load, exactly, into the network built for kT."""
    if task.length_key is None:
        return None
    device, dtype = _place(model)
    state = model.state_dict()
    n_params = sum(p.numel() for p in model.parameters())
    out = {"key": task.length_key, "trained": getattr(task_cfg, task.length_key),
           "n_params": n_params, "same_parameters": True, "reason": None, "points": []}
    for factor in LENGTH_FACTORS:
        cfg = task.at_length(task_cfg, factor)
        long_spec = task.spec(cfg)
        with torch.random.fork_rng(devices=[]):  # building draws weights: leave the RNG be
            net = build_model(model_cfg, long_spec)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            out["same_parameters"] = False
            out["reason"] = f"at {factor}x T: {str(exc).splitlines()[0][:300]}"
            break
        net.to(device=device, dtype=dtype)
        net.precompile()
        splits = task.generate(cfg, data_seed)
        test = splits["test"]
        pred = predict(net, encode_inputs(test["x"], long_spec, dtype).to(device),
                       _batch(long_spec, train_cfg))
        metrics = task.metrics(cfg, pred, test["y"])
        out["points"].append({
            "factor": factor, "length": getattr(cfg, task.length_key),
            "n_params": sum(p.numel() for p in net.parameters()), "metrics": metrics,
            "baseline": task.baseline(cfg, splits),
            "solved": long_spec.is_solved(metrics.get(long_spec.metric, float("nan")))})
    return out


def memory_gates(model, task: Task, task_cfg, spec: TaskSpec, splits: dict[str, Split]
                 ) -> dict | None:
    """Keep-gate statistics of a gated recurrent model on the first GATE_EXAMPLES test examples
    over the task's memory spans; None when the task has none or the model is not recurrent."""
    if not isinstance(model, RecurrentNet):
        return None
    test = {k: v[:GATE_EXAMPLES] for k, v in splits["test"].items()}
    spans = task.memory_spans(task_cfg, test)
    if spans is None:
        return None
    device, dtype = _place(model)
    x = encode_inputs(test["x"], spec, dtype).to(device)
    return keep_gate_stats(model.core, x, np.asarray(spans))
