"""Selective copy, after Gu & Dao (2023), "Mamba", section 3.1: the copy task with the symbols to
remember at random positions, so a model must decide from each input whether to keep it.

Alphabet as in the copy task (rnnbench.tasks.copy): 0 is the blank (the noise token), 1..8 the
data symbols, 9 the marker. An input of length T + 1 + K is: T steps holding K symbols drawn
uniformly from 1..8 at K distinct positions chosen uniformly (blanks elsewhere), the marker at
step T, then K blanks. The target is blank for the first T + 1 steps, then the K symbols in the
order they appeared. Loss: cross-entropy over every step. Predicting blanks and then a uniform
guess over the 8 symbols scores K ln 8 / (T + 1 + K), the trivial baseline; its recall accuracy
is 1/8. Unlike copy, where the symbols always fill the first K steps, a model whose gates see
only x_t must still learn to open them on symbols and shut them on blanks.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from rnnbench.tasks.base import SPLITS, Task, TaskConfig, TaskSpec
from rnnbench.tasks.copy import (
    BLANK,
    DELIM,
    N_SYMBOLS,
    recall_logits,
    recall_metrics,
    recall_spec,
    recall_xent,
)


def baseline_xent(seq_len: int, n_copy: int) -> float:
    return recall_xent(n_copy, seq_len + 1 + n_copy)


class SelectiveCopyConfig(TaskConfig):
    seq_len: Annotated[int, Field(gt=0)] = 50  # T: the steps the symbols are scattered over
    n_copy: Annotated[int, Field(gt=0)] = 8  # K: symbols to recall
    n_train: Annotated[int, Field(gt=0)] = 10_000
    n_val: Annotated[int, Field(gt=0)] = 1_000
    n_test: Annotated[int, Field(gt=0)] = 1_000
    solved_accuracy: Annotated[float, Field(gt=0, le=1)] = 0.99  # on the K recalled symbols

    @model_validator(mode="after")
    def _room(self) -> SelectiveCopyConfig:
        if self.n_copy > self.seq_len:
            raise ValueError(f"n_copy = {self.n_copy}: more symbols than the seq_len = "
                             f"{self.seq_len} steps they are scattered over")
        return self


class SelectiveCopy(Task):
    name = "selective_copy"
    Config = SelectiveCopyConfig
    length_key = "seq_len"

    def spec(self, cfg: SelectiveCopyConfig) -> TaskSpec:
        return recall_spec(self.name, cfg.solved_accuracy, "Gu & Dao 2023: K symbols from 8 at "
                           "random positions among T blanks, marker, recall in order")

    @staticmethod
    def sample(rng: np.random.Generator, n: int, seq_len: int, n_copy: int
               ) -> dict[str, np.ndarray]:
        """x, y (n, T + 1 + K) and pos (n, K): the sorted steps the symbols sit at."""
        length = seq_len + 1 + n_copy
        pos = np.sort(rng.random((n, seq_len)).argsort(axis=1)[:, :n_copy], axis=1)
        symbols = rng.integers(1, N_SYMBOLS + 1, size=(n, n_copy))
        x = np.full((n, length), BLANK, dtype=np.int64)
        np.put_along_axis(x, pos, symbols, axis=1)
        x[:, seq_len] = DELIM
        y = np.full((n, length), BLANK, dtype=np.int64)
        y[:, -n_copy:] = symbols
        return {"x": x, "y": y, "pos": pos}

    def generate(self, cfg: SelectiveCopyConfig, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
        return {s: self.sample(rng, sizes[s], cfg.seq_len, cfg.n_copy) for s in SPLITS}

    def baseline(self, cfg: SelectiveCopyConfig, splits: dict) -> dict:
        return {"name": "blanks, then a uniform guess",
                "loss": baseline_xent(cfg.seq_len, cfg.n_copy), "accuracy": 1.0 / N_SYMBOLS}

    @staticmethod
    def baseline_logits(y: np.ndarray, n_copy: int) -> np.ndarray:
        """The trivial predictor's logits for targets y (N, T + 1 + K)."""
        return recall_logits(y, n_copy)

    def memory_spans(self, cfg: SelectiveCopyConfig, split: dict) -> np.ndarray:
        """From the step of the last symbol to the first recall (step T + 1), per example."""
        last = split["pos"][:, -1]
        return np.stack([last, np.full_like(last, cfg.seq_len + 1)], axis=1)

    def metrics(self, cfg: SelectiveCopyConfig, pred: np.ndarray, y: np.ndarray
                ) -> dict[str, float]:
        return recall_metrics(pred, y, cfg.n_copy)


TASK = SelectiveCopy()
