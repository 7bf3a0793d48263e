"""The task contract: what every task module declares and provides.

A task turns its config and a seed into train/val/test splits of numpy arrays, says what shape
of problem it is, which loss trains it, which metric judges it, the trivial baseline for that
metric and the threshold that counts as solved. The training loop, the report and the pipeline
read only this contract; they never branch on a task's name.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from rnnbench.config import StrictModel, TrainOverrides

Shape = Literal["many_to_one", "many_to_many", "seq2seq", "one_to_many"]
SPLITS = ("train", "val", "test")
Split = dict[str, np.ndarray]  # {"x": inputs, "y": targets}


class TaskConfig(StrictModel):
    """Fields every task config has; task modules subclass it."""

    train: TrainOverrides | None = None  # per-task batch size / budget / lr


@dataclass(frozen=True)
class TaskSpec:
    name: str
    shape: Shape
    input_size: int  # features per step as the model sees them (after one-hot encoding)
    output_size: int  # regression outputs, or classes
    loss: Literal["mse", "xent"]
    readout: Literal["last", "all"]  # predict from the last step only, or at every step
    metric: str  # the primary metric's key in Task.metrics()
    higher_is_better: bool
    solved_threshold: float  # the primary metric value that counts as solved
    definition: str  # which published definition this task follows
    input_vocab: int | None = None  # x holds integer tokens to one-hot encode, if set

    def is_solved(self, value: float) -> bool:
        if not np.isfinite(value):
            return False
        if self.higher_is_better:
            return value >= self.solved_threshold
        return value <= self.solved_threshold

    def to_dict(self) -> dict:
        return asdict(self)


class Task:
    """Base class of the task modules' singletons (see tasks/__init__.py for the registry)."""

    name: ClassVar[str]
    Config: ClassVar[type[TaskConfig]]

    def spec(self, cfg: TaskConfig) -> TaskSpec:
        raise NotImplementedError

    def generate(self, cfg: TaskConfig, seed: int) -> dict[str, Split]:
        """Deterministic splits from a seed: {'train': {'x', 'y'}, 'val': ..., 'test': ...}."""
        raise NotImplementedError

    def baseline(self, cfg: TaskConfig, splits: dict[str, Split]) -> dict:
        """The trivial predictor's metric on the test split: {'name', <metric>: value, ...}."""
        raise NotImplementedError

    def metrics(self, cfg: TaskConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Metrics of predictions (model outputs: values or logits) against targets; has 'loss'."""
        raise NotImplementedError

    def source(self, cfg: TaskConfig) -> dict:
        """Where the data comes from (generator or dataset), recorded with the data."""
        return {"kind": "synthetic", "generator": f"rnnbench.tasks.{self.name}"}


# ---------------------------------------------------------------- shared helpers
def encode_inputs(x: np.ndarray, spec: TaskSpec, dtype: torch.dtype) -> torch.Tensor:
    """Stored inputs -> model inputs (B, T, input_size): one-hot for token tasks."""
    t = torch.from_numpy(np.ascontiguousarray(x))
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
    return torch.nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1))


def xent_np(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean softmax cross-entropy in nats; logits (..., C), integer targets (...)."""
    z = logits.astype(np.float64).reshape(-1, logits.shape[-1])
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(z)), y.reshape(-1)].mean())


def mse_np(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((pred.astype(np.float64) - y.astype(np.float64)) ** 2))


def data_hash(splits: dict[str, Split]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in a fixed order."""
    h = hashlib.sha256()
    for split in SPLITS:
        for key in sorted(splits[split]):
            a = np.ascontiguousarray(splits[split][key])
            h.update(f"{split}/{key}/{a.dtype.str}/{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest()
