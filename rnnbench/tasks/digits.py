"""Sequential classification of handwritten digits: read an 8x8 image step by step, then name it.

The data is scikit-learn's bundled copy of the UCI "Optical Recognition of Handwritten Digits"
set (Alpaydin & Kaynak 1998; sklearn.datasets.load_digits): 1,797 images of 8x8 pixels with
values 0..16, labels 0..9; it installs with scikit-learn, nothing is downloaded. Pixels are
scaled to [0, 1] (divided by 16). `order` says how an image becomes a sequence:

- "rows": 8 steps of 8 features, one image row per step, top to bottom;
- "pixels": 64 steps of 1 feature, the pixels in raster order (row by row, left to right), the
  small-scale analogue of pixel-by-pixel sequential MNIST (Le, Jaitly & Hinton 2015, "A Simple
  Way to Initialize Recurrent Networks of Rectified Linear Units");
- "permuted": 64 steps of 1 feature in a fixed random pixel order drawn from
  `permutation_seed` (their permuted MNIST), the same order for every image and split.

The images are split into train/val/test by fractions, stratified by class (each class is cut in
the same proportions) or plainly shuffled, from the data seed; every example keeps its index
into load_digits in the extra array "index". The label is predicted from the last step
(many-to-one, cross-entropy over 10 classes). The trivial baseline predicts the training
split's majority class (its test accuracy is reported) and a uniform guess scores ln 10 nats.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from rnnbench.tasks.base import SPLITS, Task, TaskConfig, TaskSpec, xent_np

N_CLASSES = 10
SIDE = 8  # images are SIDE x SIDE pixels
MAX_PIXEL = 16.0  # pixel values are integers 0..16
# Images per digit 0..9 in load_digits (1,797 in all). Configs are validated against these
# counts without importing scikit-learn (seconds per process); load_raw checks them.
CLASS_COUNTS = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)


class DigitsConfig(TaskConfig):
    order: Literal["rows", "pixels", "permuted"] = "rows"  # how an image becomes a sequence
    permutation_seed: Annotated[int, Field(ge=0)] = 0  # draws the "permuted" pixel order
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15  # of the images (of each class)
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    stratify: bool = True  # cut each class in the split's proportions; False: shuffle all
    # The majority-class baseline scores about 0.1. On "rows", 64-unit GRUs and tanh RNNs pass
    # 0.9 validation accuracy within 60-120 steps (under a second); trained on for the quick
    # profile's 380 steps they reach 0.97 and 0.93 test. "pixels" and "permuted" are harder:
    # after 380 steps (8 s) a GRU scores 0.86 and 0.73 on test, a tanh RNN 0.44 and 0.10.
    solved_accuracy: Annotated[float, Field(gt=0, le=1)] = 0.9  # test accuracy

    @model_validator(mode="after")
    def _fits(self) -> DigitsConfig:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction + test_fraction = "
                             f"{self.val_fraction + self.test_fraction}: leaves no training images")
        sizes = split_sizes(self, np.array(CLASS_COUNTS))
        for split, n in sizes.items():
            if n < 1:
                key = "test" if split == "train" else split
                raise ValueError(f"{key}_fraction = {getattr(self, f'{key}_fraction')}: leaves "
                                 f"the {split} split without images"
                                 f"{' of some class' if self.stratify else ''}")
        return self


@lru_cache(maxsize=1)
def load_raw() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) uint8 in 0..16, labels (1797,) int64), read-only, from sklearn."""
    from sklearn.datasets import load_digits  # imported late: scikit-learn is slow to import

    d = load_digits()
    images = np.asarray(d.images)
    if not np.array_equal(images, np.round(images)) or images.min() < 0 \
            or images.max() > MAX_PIXEL:
        raise ValueError("sklearn's digits are not integers in 0..16 as expected")
    images, labels = images.astype(np.uint8), np.asarray(d.target, dtype=np.int64)
    if tuple(np.bincount(labels, minlength=N_CLASSES)) != CLASS_COUNTS:
        raise ValueError("sklearn's digits do not have the expected images per class "
                         f"{CLASS_COUNTS}: update CLASS_COUNTS in {__name__}")
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def raw_sha256() -> str:
    """sha256 of the raw images (uint8 bytes, row-major) and labels (little-endian int64)."""
    images, labels = load_raw()
    h = hashlib.sha256()
    h.update(f"images/{images.shape}".encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(f"labels/{labels.shape}".encode())
    h.update(labels.astype("<i8").tobytes())
    return h.hexdigest()


def permutation(seed: int) -> np.ndarray:
    """The fixed pixel order of "permuted": position k of the sequence reads raster pixel p[k]."""
    return np.random.default_rng(seed).permutation(SIDE * SIDE)


def split_sizes(cfg: DigitsConfig, counts: np.ndarray) -> dict[str, int]:
    """Smallest split size: per class when stratified, over all images otherwise."""
    groups = counts if cfg.stratify else np.array([counts.sum()])
    n_test = np.round(groups * cfg.test_fraction).astype(int)
    n_val = np.round(groups * cfg.val_fraction).astype(int)
    return {"train": int((groups - n_test - n_val).min()), "val": int(n_val.min()),
            "test": int(n_test.min())}


def split_indices(cfg: DigitsConfig, labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Disjoint sorted index arrays covering every image: each group (a class when stratified,
    else all images) is shuffled by the seed and cut into test, val, then train."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in range(N_CLASSES)] if cfg.stratify \
        else [np.arange(len(labels))]
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for g in groups:
        g = rng.permutation(g)
        n_test, n_val = round(len(g) * cfg.test_fraction), round(len(g) * cfg.val_fraction)
        parts["test"].append(g[:n_test])
        parts["val"].append(g[n_test:n_test + n_val])
        parts["train"].append(g[n_test + n_val:])
    return {s: np.sort(np.concatenate(p)) for s, p in parts.items()}


def to_sequences(images: np.ndarray, cfg: DigitsConfig) -> np.ndarray:
    """uint8 images (N, 8, 8) -> float32 sequences in [0, 1]: (N, 8, 8) or (N, 64, 1)."""
    flat = images.reshape(len(images), SIDE * SIDE).astype(np.float32) / MAX_PIXEL
    if cfg.order == "rows":
        return flat.reshape(len(images), SIDE, SIDE)
    if cfg.order == "permuted":
        flat = flat[:, permutation(cfg.permutation_seed)]
    return flat[..., None]


class Digits(Task):
    name = "digits"
    Config = DigitsConfig

    def spec(self, cfg: DigitsConfig) -> TaskSpec:
        steps = {"rows": "8 rows of 8 pixels", "pixels": "64 pixels in raster order",
                 "permuted": f"64 pixels permuted (seed {cfg.permutation_seed})"}[cfg.order]
        return TaskSpec(
            name=self.name, shape="many_to_one",
            input_size=SIDE if cfg.order == "rows" else 1, output_size=N_CLASSES, loss="xent",
            readout="last", metric="accuracy", higher_is_better=True,
            solved_threshold=cfg.solved_accuracy,
            definition=f"sklearn's 8x8 digits (Alpaydin & Kaynak 1998) read as {steps}; "
                       "sequential/permuted order after Le et al. 2015",
            real_data=True,
        )

    def generate(self, cfg: DigitsConfig, seed: int) -> dict:
        images, labels = load_raw()
        out = {}
        for split, idx in split_indices(cfg, labels, seed).items():
            out[split] = {"x": to_sequences(images[idx], cfg), "y": labels[idx].copy(),
                          "index": idx.astype(np.int64)}
        return out

    def baseline(self, cfg: DigitsConfig, splits: dict) -> dict:
        train_y, test_y = splits["train"]["y"], splits["test"]["y"]
        majority = int(np.bincount(train_y, minlength=N_CLASSES).argmax())
        return {"name": "majority class of the training split",
                "accuracy": float((test_y == majority).mean()), "majority_class": majority,
                "loss": float(np.log(N_CLASSES))}  # a uniform guess: ln 10 nats

    def metrics(self, cfg: DigitsConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        return {"loss": xent_np(pred, y), "accuracy": float((pred.argmax(axis=-1) == y).mean())}

    def breakdowns(self, cfg: DigitsConfig, pred: np.ndarray, split: dict) -> dict[str, dict]:
        right = pred.argmax(axis=-1) == split["y"]
        return {"accuracy by digit": {str(c): float(right[split["y"] == c].mean())
                                      for c in range(N_CLASSES) if (split["y"] == c).any()}}

    def source(self, cfg: DigitsConfig) -> dict:
        import sklearn

        images, _ = load_raw()
        return {"kind": "dataset", "dataset": "sklearn.datasets.load_digits (UCI optical "
                "recognition of handwritten digits)", "sklearn": sklearn.__version__,
                "sha256": raw_sha256(), "images": len(images), "order": cfg.order,
                "permutation_seed": cfg.permutation_seed}


TASK = Digits()
