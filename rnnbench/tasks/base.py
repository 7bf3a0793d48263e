"""The task contract: what every task module declares and provides.

A task turns its config and a seed into train/val/test splits of numpy arrays, says what shape
of problem it is, which loss trains it, which metric judges it, the trivial baseline for that
metric and the threshold that counts as solved. The training loop, the report and the pipeline
read only this contract; they never branch on a task's name. A task also declares which of
the report's claims its results feed (TaskSpec.claims). Numpy only: validating params loads
every task module, and the data and report stages never load torch.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from rnnbench.config import StrictModel
from rnnbench.training.schema import TrainOverrides

if TYPE_CHECKING:
    import torch

Shape = Literal["many_to_one", "many_to_many", "seq2seq", "one_to_many"]
SPLITS = ("train", "val", "test")
Split = dict[str, np.ndarray]  # {"x": inputs, "y": targets, optional extra per-example arrays}

# Token conventions of seq2seq tasks (inputs and targets alike): 0 pads, 1 starts the decoder's
# input, 2 ends a sequence; symbols are 3 and up. Padded target positions count in no loss.
PAD, BOS, EOS = 0, 1, 2
# A trained model is also tested on inputs this many times longer than its training length T
# (Task.at_length): "an RNN processes inputs of any length" in theory; in practice?
LENGTH_FACTORS = (2, 4)


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
    # The target at step t may depend on inputs up to t only (language modelling): a model
    # that reads the sequence backwards would see the answer, so bidirectional models are out.
    causal: bool = False
    # Truncated BPTT over long streams: the splits' rows are consecutive chunks laid out
    # chunk-major, `streams` rows per chunk (row k * streams + s is chunk k of stream s); batches
    # are taken in order, and the hidden state is carried from one chunk to the next.
    streams: int | None = None
    # seq2seq: targets are `output_len` tokens (EOS, then PAD); inputs are PAD-padded token ids
    # that the model embeds itself (no one-hot encoding); PAD targets are left out of the loss.
    output_len: int | None = None
    # The report's claims this task's runs are evidence for (names in rnnbench.report.claims).
    claims: tuple[str, ...] = ()
    # A fixed dataset (Task.source kind 'dataset'), not generated: by default it trains its
    # whole budget and keeps the best-validation checkpoint (TrainConfig.early_stop/keep_best),
    # so final metrics compare models trained alike, not models stopped by luck.
    real_data: bool = False

    @property
    def stateful(self) -> bool:
        return self.streams is not None

    @property
    def ignore_index(self) -> int:
        """Target value the loss skips: PAD for seq2seq tasks, none (-100) otherwise."""
        return PAD if self.shape == "seq2seq" else -100

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
    length_key: ClassVar[str | None] = None  # the config field holding the length T, if any

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

    def breakdowns(self, cfg: TaskConfig, pred: np.ndarray, split: Split) -> dict[str, dict]:
        """Optional views of test predictions by a property of the examples, such as accuracy by
        input length or with and without negation: {title: {group label: value}}. `split` may
        hold, beside x and y, extra per-example arrays the generator stored for this."""
        return {}

    def at_length(self, cfg: TaskConfig, factor: int) -> TaskConfig | None:
        """The task with its length T (the config field `length_key`) multiplied by `factor`,
        validated: the data a trained model is tested on beyond its training length (only its
        test split is used, so the training and validation splits shrink to one example; a task
        whose baseline is fitted on its training split must override this). None when the task
        has no such length."""
        if self.length_key is None:
            return None
        small = {k: 1 for k in ("n_train", "n_val") if k in type(cfg).model_fields}
        return type(cfg).model_validate({**cfg.model_dump(), **small,
                                         **self.longer(cfg, factor)})

    def longer(self, cfg: TaskConfig, factor: int) -> dict:
        """The config fields at_length changes: by default T = factor x T."""
        return {self.length_key: getattr(cfg, self.length_key) * factor}

    def memory_spans(self, cfg: TaskConfig, split: Split) -> np.ndarray | None:
        """Optional (N, 2) int array, one row per example of `split`: (s, e) with s the step at
        which the information the answer needs has been read and e the step at which the answer
        is given, so the state must carry it over steps s+1..e. None when the task has none."""
        return None

    def showcase(self, cfg: TaskConfig, model: torch.nn.Module, splits: dict[str, Split],
                 seed: int) -> dict | None:
        """Optional qualitative output of a trained model for the report, one of
        {"kind": "text", "title": str, "text": str} (e.g. sampled text) or
        {"kind": "attention", "title": str, "examples": [{"input": [str], "output": [str],
        "weights": [[float]] (output steps x input steps)}]}."""
        return None


# ---------------------------------------------------------------- shared helpers
def xent_np(logits: np.ndarray, y: np.ndarray, ignore_index: int | None = None) -> float:
    """Mean softmax cross-entropy in nats; logits (..., C), integer targets (...); targets equal
    to ignore_index are left out of the mean."""
    z = logits.astype(np.float64).reshape(-1, logits.shape[-1])
    y = y.reshape(-1)
    if ignore_index is not None:
        keep = y != ignore_index
        z, y = z[keep], y[keep]
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(z)), y].mean())


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
