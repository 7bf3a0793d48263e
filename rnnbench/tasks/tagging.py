"""Tag each symbol with whether it occurs again LATER: a labelling task only a model that reads
the sequence backwards too can get right.

Each sequence is `seq_len` (T) symbols drawn independently and uniformly from an alphabet of
`n_symbols` (k); the label at step t is 1 when the symbol x_t occurs again among x_{t+1..T-1},
else 0 (many-to-many, aligned: one binary label per step, readout "all").

    x: 3 0 5 3 6 0 1 7 ...
    y: 1 1 0 ? ? ? ? ? ...   (y_0 = 1: the 3 comes back at step 3)

The label depends only on the future: given x_0..x_t, the chance that x_t reappears in the
T - 1 - t steps still to come is p_t = 1 - (1 - 1/k)^(T-1-t), whatever the past. So the best a
causal (unidirectional) predictor can do is to say 1 where p_t > 1/2: per-step accuracy
mean_t max(p_t, 1 - p_t) and cross-entropy mean_t H(p_t). A bidirectional model can be exact:
its backward pass carries the set of symbols still to come (k bits) and whether x_t was among
them. With k = 8 and T = 16 the causal bound is 0.735 against a solved threshold of 0.95; the
trivial baseline (the training split's majority label at every step) scores about 0.56.
Measured (hidden 64, Adam lr 0.01, batch 64, 1 thread): unidirectional RNN, GRU and LSTM level
off at the bound (0.737 test after 1,500 steps); a bidirectional GRU passes 0.95 in 200-250
steps (3-5 s), a bidirectional LSTM in 250, a bidirectional tanh RNN in about 1,000 (6-10 s;
one seed in three reached 0.92 by 1,500 steps).

This is a sequence version of the "does this element occur again" feature; the definition is
this benchmark's own, made for the uni- versus bidirectional comparison (Schuster & Paliwal
1997, "Bidirectional recurrent neural networks").
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from rnnbench.tasks.base import SPLITS, Task, TaskConfig, TaskSpec, xent_np


def causal_p(n_symbols: int, seq_len: int) -> np.ndarray:
    """P(label_t = 1 | x_0..x_t) for t = 0..T-1: the symbol reappears in the T-1-t later steps."""
    return 1.0 - (1.0 - 1.0 / n_symbols) ** (seq_len - 1 - np.arange(seq_len))


def best_causal_accuracy(n_symbols: int, seq_len: int) -> float:
    p = causal_p(n_symbols, seq_len)
    return float(np.maximum(p, 1 - p).mean())


def best_causal_xent(n_symbols: int, seq_len: int) -> float:
    """Mean over steps of the binary entropy of p_t in nats: the best causal cross-entropy."""
    p = np.clip(causal_p(n_symbols, seq_len), 1e-300, 1.0)
    q = np.clip(1.0 - causal_p(n_symbols, seq_len), 1e-300, 1.0)
    return float(np.mean(-p * np.log(p) - q * np.log(q)))


def occurs_later(x: np.ndarray) -> np.ndarray:
    """Labels for tokens (N, T): 1 where x[:, t] occurs again after step t."""
    t = x.shape[1]
    later = np.triu(np.ones((t, t), dtype=bool), k=1)  # [s, u]: step u comes after step s
    return ((x[:, :, None] == x[:, None, :]) & later).any(axis=2).astype(np.int64)


class TaggingConfig(TaskConfig):
    n_symbols: int = 8  # k: the alphabet; symbols are drawn uniformly
    seq_len: int = 16  # T: steps per sequence
    n_train: Annotated[int, Field(gt=0)] = 5_000
    n_val: Annotated[int, Field(gt=0)] = 1_000
    n_test: Annotated[int, Field(gt=0)] = 1_000
    # Per-step accuracy; must exceed the best causal predictor's (0.735 at k = 8, T = 16).
    solved_accuracy: Annotated[float, Field(gt=0.5, le=1)] = 0.95

    @model_validator(mode="after")
    def _fits(self) -> TaggingConfig:
        if self.n_symbols < 2:
            raise ValueError(f"n_symbols = {self.n_symbols}: the alphabet needs at least 2 "
                             "symbols")
        if self.seq_len < 2:
            raise ValueError(f"seq_len = {self.seq_len}: a sequence needs at least 2 steps")
        bound = best_causal_accuracy(self.n_symbols, self.seq_len)
        if bound >= self.solved_accuracy:
            raise ValueError(f"solved_accuracy = {self.solved_accuracy}: a unidirectional model "
                             f"already reaches {bound:.3f} at n_symbols = {self.n_symbols}, "
                             f"seq_len = {self.seq_len}; raise the threshold or change k, T")
        return self


class Tagging(Task):
    name = "tagging"
    Config = TaggingConfig

    def spec(self, cfg: TaggingConfig) -> TaskSpec:
        return TaskSpec(
            name=self.name, shape="many_to_many", input_size=cfg.n_symbols, output_size=2,
            loss="xent", readout="all", metric="accuracy", higher_is_better=True,
            solved_threshold=cfg.solved_accuracy,
            claims=("bidirectional_future",),
            definition=f"tag each of {cfg.seq_len} uniform symbols from {cfg.n_symbols} with "
                       "whether it occurs again later (needs the future: bidirectional)",
            input_vocab=cfg.n_symbols,
        )

    @staticmethod
    def sample(rng: np.random.Generator, n: int, cfg: TaggingConfig) -> dict[str, np.ndarray]:
        x = rng.integers(0, cfg.n_symbols, size=(n, cfg.seq_len))
        return {"x": x, "y": occurs_later(x)}  # tokens (N, T), labels (N, T)

    def generate(self, cfg: TaggingConfig, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
        return {s: self.sample(rng, sizes[s], cfg) for s in SPLITS}

    def baseline(self, cfg: TaggingConfig, splits: dict) -> dict:
        test_y = splits["test"]["y"]
        rate = float(np.clip(splits["train"]["y"].mean(), 1e-6, 1 - 1e-6))
        majority = int(rate > 0.5)
        logits = np.broadcast_to(np.log([1 - rate, rate]), test_y.shape + (2,))
        return {"name": "majority label of the training split, at every step",
                "accuracy": float((test_y == majority).mean()), "majority_label": majority,
                "loss": xent_np(logits, test_y),  # the training label frequency as prediction
                "accuracy_best_causal": best_causal_accuracy(cfg.n_symbols, cfg.seq_len),
                "loss_best_unidirectional": best_causal_xent(cfg.n_symbols, cfg.seq_len)}

    def metrics(self, cfg: TaggingConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        return {"loss": xent_np(pred, y), "accuracy": float((pred.argmax(axis=-1) == y).mean())}


TASK = Tagging()
