"""Copy memory, as defined by Arjovsky, Shah & Bengio (2016), section 4.3 (after Hochreiter &
Schmidhuber 1997).

Alphabet: 0 is the blank, 1..8 the data symbols, 9 the delimiter. An input sequence of length
T + 20 is: 10 symbols drawn uniformly from 1..8, T - 1 blanks, the delimiter, then 10 blanks.
The target is blank for the first T + 10 steps, then the 10 symbols in order. Loss is the
cross-entropy over all T + 20 steps. Predicting blanks and then a uniform guess over the 8 symbols
gives 10 ln 8 / (T + 20), the trivial baseline; its recall accuracy is 1/8.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator

from rnnbench.tasks.base import SPLITS, Task, TaskConfig, TaskSpec, xent_np

N_SYMBOLS = 8
N_COPY = 10
BLANK, DELIM = 0, N_SYMBOLS + 1


def recall_xent(n_recall: int, length: int) -> float:
    """Blanks, then a uniform guess over the symbols at the last n_recall of `length` steps."""
    return n_recall * np.log(N_SYMBOLS) / length


def recall_logits(y: np.ndarray, n_recall: int) -> np.ndarray:
    """That trivial predictor's logits for targets y (N, length): checks the analytic value."""
    logits = np.full(y.shape + (N_SYMBOLS + 1,), -1e9)
    logits[:, :-n_recall, BLANK] = 0.0  # certain blank while waiting
    logits[:, -n_recall:, 1:] = 0.0  # uniform over the 8 symbols at recall
    return logits


def recall_metrics(pred: np.ndarray, y: np.ndarray, n_recall: int) -> dict[str, float]:
    """Cross-entropy over every step; accuracy over the last n_recall (the recalled symbols)."""
    recalled = pred[:, -n_recall:].argmax(axis=-1)
    return {"loss": xent_np(pred, y), "accuracy": float((recalled == y[:, -n_recall:]).mean())}


def baseline_xent(delay: int) -> float:
    return recall_xent(N_COPY, delay + 2 * N_COPY)


class CopyConfig(TaskConfig):
    delay: int = 20  # T: blanks + delimiter between the symbols and their recall
    n_train: Annotated[int, Field(gt=0)] = 10_000
    n_val: Annotated[int, Field(gt=0)] = 1_000
    n_test: Annotated[int, Field(gt=0)] = 1_000
    solved_accuracy: Annotated[float, Field(gt=0, le=1)] = 0.99  # on the 10 recalled symbols

    @field_validator("delay")
    @classmethod
    def _long_enough(cls, v: int) -> int:
        if v < 1:
            raise ValueError("too short for the copy task: the delay T must be at least 1 "
                             "(the delimiter step)")
        return v


def recall_spec(name: str, solved_accuracy: float, definition: str) -> TaskSpec:
    """What the recall tasks (copy, selective copy) share: the symbols, a blank and a marker in;
    the symbols and the blank out, at every step; accuracy on the recalled symbols."""
    return TaskSpec(
        name=name, shape="many_to_many", input_size=N_SYMBOLS + 2, output_size=N_SYMBOLS + 1,
        loss="xent", readout="all", metric="accuracy", higher_is_better=True,
        solved_threshold=solved_accuracy, definition=definition, input_vocab=N_SYMBOLS + 2,
        claims=("any_length", "gate_keeps_content", "state_free_gates"))


class Copy(Task):
    name = "copy"
    Config = CopyConfig
    length_key = "delay"

    def spec(self, cfg: CopyConfig) -> TaskSpec:
        return recall_spec(self.name, cfg.solved_accuracy, "Arjovsky et al. 2016: 10 symbols "
                           "from 8, T-1 blanks, delimiter, recall")

    @staticmethod
    def sample(rng: np.random.Generator, n: int, delay: int) -> dict[str, np.ndarray]:
        length = delay + 2 * N_COPY
        symbols = rng.integers(1, N_SYMBOLS + 1, size=(n, N_COPY))
        x = np.full((n, length), BLANK, dtype=np.int64)
        x[:, :N_COPY] = symbols
        x[:, N_COPY + delay - 1] = DELIM
        y = np.full((n, length), BLANK, dtype=np.int64)
        y[:, -N_COPY:] = symbols
        return {"x": x, "y": y}  # tokens (N, T+20), classes (N, T+20)

    def generate(self, cfg: CopyConfig, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
        return {s: self.sample(rng, sizes[s], cfg.delay) for s in SPLITS}

    def baseline(self, cfg: CopyConfig, splits: dict) -> dict:
        return {"name": "blanks, then a uniform guess", "loss": baseline_xent(cfg.delay),
                "accuracy": 1.0 / N_SYMBOLS}

    @staticmethod
    def baseline_logits(y: np.ndarray) -> np.ndarray:
        """The trivial predictor's logits for targets y (N, T+20): checks the analytic value."""
        return recall_logits(y, N_COPY)

    def memory_spans(self, cfg: CopyConfig, split: dict) -> np.ndarray:
        """From the last symbol read (step N_COPY - 1) to the first recall (step N_COPY + T)."""
        n = len(split["x"])
        return np.tile(np.array([N_COPY - 1, N_COPY + cfg.delay]), (n, 1))

    def metrics(self, cfg: CopyConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        return recall_metrics(pred, y, N_COPY)


TASK = Copy()
