"""One-to-many: draw a handwritten digit row by row from its class.

The lecture notes' one-to-many shape (image captioning: one input, a sequence out), turned
around so that the data installs with the project: the input is one vector, the digit's class
as a one-hot of 10, and the output is a sequence, the digit's 8x8 image from scikit-learn's
bundled digits (the `digits` task's data, split the same way, pixels scaled to [0, 1]) written
one row of 8 pixels per step, top to bottom, 8 steps.

How the one input reaches the state (the notes do not say), `feed`:

- "first": the class is the first step's input and zeros follow, so it enters the state once,
  through the first update h_1 = f(W_ih x + b): it initialises the state, as Vinyals et al.
  (2015, "Show and Tell") feed the image once before the words. Every recurrent model serves it
  unchanged (many-to-many readout, a row predicted at every step).
- "every": the class is the input at every step (Mao et al. 2015's m-RNN feeds the image at
  every step); the state then need not carry it.

Loss and metric: mean squared error per pixel. The trivial baseline draws the training split's
mean image whatever the class; the class's mean training image is the best any predictor that
sees only the class can draw under squared error (up to the train/test sampling), reported as
`mse_class_mean`: a model can at best match it, not beat it by much.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from rnnbench.tasks import digits
from rnnbench.tasks.base import Task, TaskConfig, TaskSpec, mse_np

SIDE, N_CLASSES = digits.SIDE, digits.N_CLASSES
SHADES = " .:-=+*#%@"  # ASCII shades of a drawn pixel, 0 to 1


class DrawDigitsConfig(TaskConfig):
    feed: Literal["first", "every"] = "first"  # the class at the first step only, or at every
    val_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.15  # as the digits task splits
    test_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    stratify: bool = True
    # Test MSE on data seed 0: the mean image 0.0735, the class means 0.0436 (the floor for a
    # predictor of the class alone); 0.05 closes four fifths of the gap between them.
    solved_mse: Annotated[float, Field(gt=0)] = 0.05


class DrawDigits(Task):
    name = "draw_digits"
    Config = DrawDigitsConfig

    def spec(self, cfg: DrawDigitsConfig) -> TaskSpec:
        return TaskSpec(
            name=self.name, shape="one_to_many", input_size=N_CLASSES, output_size=SIDE,
            loss="mse", readout="all", metric="mse", higher_is_better=False,
            solved_threshold=cfg.solved_mse, claims=("one_to_many",),
            definition=f"a digit's class (one-hot, fed at {cfg.feed} step"
                       f"{'' if cfg.feed == 'first' else 's'}) -> its 8x8 image from sklearn's "
                       "digits, one row of 8 pixels per step",
        )

    @staticmethod
    def inputs(labels: np.ndarray, feed: str) -> np.ndarray:
        """Classes (N,) -> inputs (N, 8, 10): the one-hot at step 0 only, or at every step."""
        x = np.zeros((len(labels), SIDE, N_CLASSES), dtype=np.float32)
        steps = [0] if feed == "first" else list(range(SIDE))
        for t in steps:
            x[np.arange(len(labels)), t, labels] = 1.0
        return x

    def generate(self, cfg: DrawDigitsConfig, seed: int) -> dict:
        images, labels = digits.load_raw()
        out = {}
        for split, idx in digits.split_indices(cfg, labels, seed).items():
            y = images[idx].astype(np.float32) / digits.MAX_PIXEL  # (N, 8 rows, 8 pixels)
            out[split] = {"x": self.inputs(labels[idx], cfg.feed), "y": y,
                          "label": labels[idx].copy(), "index": idx.astype(np.int64)}
        return out

    def baseline(self, cfg: DrawDigitsConfig, splits: dict) -> dict:
        train, test = splits["train"], splits["test"]
        means = np.stack([train["y"][train["label"] == c].mean(axis=0) for c in range(N_CLASSES)])
        return {"name": "the mean training image, whatever the class",
                "mse": mse_np(np.broadcast_to(train["y"].mean(axis=0), test["y"].shape),
                              test["y"]),
                "mse_class_mean": mse_np(means[test["label"]], test["y"])}

    def metrics(self, cfg: DrawDigitsConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        mse = mse_np(pred, y)
        return {"loss": mse, "mse": mse}

    def breakdowns(self, cfg: DrawDigitsConfig, pred: np.ndarray, split: dict) -> dict:
        err = ((pred.astype(np.float64) - split["y"]) ** 2).mean(axis=(1, 2))
        return {"mse by digit": {str(c): float(err[split["label"] == c].mean())
                                 for c in range(N_CLASSES) if (split["label"] == c).any()}}

    def showcase(self, cfg: DrawDigitsConfig, model, splits: dict, seed: int) -> dict:
        """Each class's drawing by the trained model, in ASCII shades."""
        import torch  # the trained model's showcase: the only part of this task that runs torch

        p = next(model.parameters())
        x = torch.as_tensor(self.inputs(np.arange(N_CLASSES), cfg.feed), dtype=p.dtype,
                            device=p.device)
        model.eval()
        with torch.no_grad():
            drawn = model(x).clamp(0, 1).cpu().numpy()  # (10, 8, 8)
        model.train()
        rows = ["  ".join("".join(SHADES[int(v * (len(SHADES) - 1) + 0.5)] for v in img[r])
                          for img in drawn) for r in range(SIDE)]
        return {"kind": "text", "title": "the digits 0-9 as the trained model draws them "
                                         f"(class fed at {cfg.feed} step)",
                "text": "\n".join(["  ".join(f"{c:<8d}" for c in range(N_CLASSES)), *rows])}


TASK = DrawDigits()
