"""Stored task arrays -> model tensors, and each task's training loss (by its TaskSpec)."""

from __future__ import annotations

import numpy as np
import torch

from rnnbench.tasks.base import TaskSpec

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def encode_inputs(x: np.ndarray, spec: TaskSpec, dtype: torch.dtype) -> torch.Tensor:
    """Stored inputs -> model inputs (B, T, input_size): one-hot for token tasks; seq2seq models
    take the token ids (B, T) and embed them."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if spec.shape == "seq2seq":
        return t.long()
    if spec.input_vocab is not None:
        return torch.nn.functional.one_hot(t.long(), spec.input_vocab).to(dtype)
    return t.to(dtype)


def encode_targets(y: np.ndarray, spec: TaskSpec, dtype: torch.dtype) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(y))
    return t.long() if spec.loss == "xent" else t.to(dtype)


def loss_fn(spec: TaskSpec, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The task's training loss; the mean over every predicted element."""
    if spec.loss == "mse":
        return torch.nn.functional.mse_loss(pred, y)
    return torch.nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1),
                                             ignore_index=spec.ignore_index)
