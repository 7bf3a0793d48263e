"""THE training step: forward, the task's loss, backward, clipping, the optimiser update.

`fit` takes exactly this step for every model, the Numba RNN included (its BPTT runs inside an
autograd Function), and the speed benchmark times exactly this step. Clipping happens after
backward() and before step(), where it takes effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rnnbench.tasks.base import TaskSpec
from rnnbench.training.encode import loss_fn
from rnnbench.training.schema import TrainConfig


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum)


def clip_gradients(cfg: TrainConfig, params: list[torch.Tensor]) -> tuple[float, bool]:
    """Clip in place after backward(); return the pre-clip global norm and whether it clipped."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = float(torch.nn.utils.get_total_norm(grads))
    if cfg.clip == "norm":
        torch.nn.utils.clip_grads_with_norm_(params, cfg.clip_value, torch.tensor(norm))
        return norm, norm > cfg.clip_value
    if cfg.clip == "value":
        clipped = any(bool((g.abs() > cfg.clip_value).any()) for g in grads)
        torch.nn.utils.clip_grad_value_(params, cfg.clip_value)
        return norm, clipped
    return norm, False


@dataclass(frozen=True)
class StepOutcome:
    loss: float  # the batch's training loss before the update
    grad_norm: float  # pre-clipping global L2 norm of the gradient (nan if never computed)
    clipped: bool
    failure: str | None = None  # why the step was not taken: a non-finite loss or gradient


class TrainStep:
    """One optimiser step of `model` on a batch, by `cfg` (optimiser, clipping) and the task's
    loss; the optimiser and its state live here, across calls."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, spec: TaskSpec):
        self.model, self.cfg, self.spec = model, cfg, spec
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(cfg, self.params)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> StepOutcome:
        model = self.model
        loss = loss_fn(self.spec, model(x, y) if model.takes_targets else model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            return StepOutcome(loss.item(), math.nan, False, f"non-finite training loss "
                                                             f"({loss.item()})")
        loss.backward()
        norm, clipped = clip_gradients(self.cfg, self.params)
        if not math.isfinite(norm):
            return StepOutcome(loss.item(), norm, clipped, f"non-finite gradient norm ({norm})")
        self.optimizer.step()
        return StepOutcome(loss.item(), norm, clipped)
