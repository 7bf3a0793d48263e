"""The adding problem, as defined by Arjovsky, Shah & Bengio (2016), "Unitary Evolution
Recurrent Neural Networks", section 4.2.

Each step carries two numbers: a value drawn uniformly from [0, 1] and a marker. Exactly two
markers are 1: the first at a step drawn uniformly from the first half [0, T/2), the second from
the second half [T/2, T). The target, read at the last step, is the sum of the two marked values.
Predicting the constant 1 gives MSE = Var(U1 + U2) = 2/12 = 1/6, the trivial baseline.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator

from rnnbench.tasks.base import SPLITS, Task, TaskConfig, TaskSpec, mse_np

BASELINE_MSE = 1.0 / 6.0


class AddingConfig(TaskConfig):
    seq_len: int = 100  # T, steps per sequence
    n_train: Annotated[int, Field(gt=0)] = 10_000
    n_val: Annotated[int, Field(gt=0)] = 1_000
    n_test: Annotated[int, Field(gt=0)] = 1_000
    solved_mse: Annotated[float, Field(gt=0)] = 0.01  # about 6% of the 1/6 baseline

    @field_validator("seq_len")
    @classmethod
    def _long_enough(cls, v: int) -> int:
        if v < 2:
            raise ValueError("too short for the adding task: it needs at least 2 steps "
                             "(one marker in each half)")
        return v


class Adding(Task):
    name = "adding"
    Config = AddingConfig
    length_key = "seq_len"

    def spec(self, cfg: AddingConfig) -> TaskSpec:
        return TaskSpec(
            name=self.name, shape="many_to_one", input_size=2, output_size=1, loss="mse",
            readout="last", metric="mse", higher_is_better=False,
            solved_threshold=cfg.solved_mse,
            claims=("gates_long_range", "any_length", "gate_keeps_content",
                    "state_free_gates"),
            definition="Arjovsky et al. 2016: one marker uniform in each half, target = sum",
        )

    @staticmethod
    def sample(rng: np.random.Generator, n: int, seq_len: int) -> dict[str, np.ndarray]:
        values = rng.uniform(0.0, 1.0, size=(n, seq_len))
        half = seq_len // 2
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, seq_len, size=n)
        markers = np.zeros((n, seq_len))
        markers[np.arange(n), first] = 1.0
        markers[np.arange(n), second] = 1.0
        x = np.stack([values, markers], axis=-1).astype(np.float32)  # (N, T, 2)
        y = (values[np.arange(n), first] + values[np.arange(n), second])[:, None]  # (N, 1)
        return {"x": x, "y": y.astype(np.float32)}

    def generate(self, cfg: AddingConfig, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
        return {s: self.sample(rng, sizes[s], cfg.seq_len) for s in SPLITS}

    def baseline(self, cfg: AddingConfig, splits: dict) -> dict:
        y = splits["test"]["y"]
        return {"name": "predict 1 (the expected sum)", "mse": BASELINE_MSE,
                "mse_empirical": mse_np(np.ones_like(y), y)}

    def memory_spans(self, cfg: AddingConfig, split: dict) -> np.ndarray:
        """From the first marker to the last step, where the sum is read out."""
        first = split["x"][:, :, 1].argmax(axis=1)  # the first marked step (the first half's)
        return np.stack([first, np.full_like(first, split["x"].shape[1] - 1)], axis=1)

    def metrics(self, cfg: AddingConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        mse = mse_np(pred, y)
        return {"loss": mse, "mse": mse}


TASK = Adding()
