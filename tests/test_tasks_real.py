"""Real-data tasks: digits (sklearn), sunspots and co2 (statsmodels), through their modules."""

from __future__ import annotations

import hashlib
from typing import ClassVar

import numpy as np
import pytest
from pydantic import ValidationError

from rnnbench.tasks.base import data_hash, xent_np
from rnnbench.tasks.co2 import TASK as CO2
from rnnbench.tasks.co2 import Co2Config
from rnnbench.tasks.digits import TASK as DIGITS
from rnnbench.tasks.digits import DigitsConfig, permutation
from rnnbench.tasks.forecast import ForecastConfig, ForecastTask, scaler, train_part
from rnnbench.tasks.sunspots import TASK as SUNSPOTS
from rnnbench.tasks.sunspots import SunspotsConfig
from tests.conftest import ROOT

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def raw_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


@pytest.fixture(scope="module")
def raw_sunspots():
    from statsmodels.datasets import sunspots

    data = sunspots.load_pandas().data
    return data["YEAR"].to_numpy(), data["SUNACTIVITY"].to_numpy(dtype=np.float64)


# ---------------------------------------------------------------- digits
@pytest.mark.parametrize("order, shape", [("rows", (8, 8)), ("pixels", (64, 1)),
                                          ("permuted", (64, 1))])
def test_digits_shapes_and_values(order, shape, raw_digits):
    cfg = DigitsConfig(order=order)
    spec, splits = DIGITS.spec(cfg), DIGITS.generate(cfg, 0)
    assert spec.input_size == shape[1] and spec.output_size == 10 and spec.loss == "xent"
    images, labels = raw_digits
    for s in SPLITS:
        x, y, idx = splits[s]["x"], splits[s]["y"], splits[s]["index"]
        assert x.shape == (len(y),) + shape and x.dtype == np.float32
        assert x.min() >= 0 and x.max() <= 1 and x.max() == 1  # divided by 16
        np.testing.assert_array_equal(y, labels[idx])
        if order == "rows":
            np.testing.assert_array_equal(x, images[idx] / 16)


@pytest.mark.parametrize("stratify", [True, False])
def test_digits_splits_are_disjoint_and_cover_every_image(stratify, raw_digits):
    cfg = DigitsConfig(stratify=stratify, val_fraction=0.1, test_fraction=0.25)
    splits = DIGITS.generate(cfg, 3)
    idx = {s: splits[s]["index"] for s in SPLITS}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not set(idx[a]) & set(idx[b])
    assert sorted(np.concatenate(list(idx.values()))) == list(range(len(raw_digits[1])))
    n = len(raw_digits[1])
    assert abs(len(idx["test"]) - 0.25 * n) <= 10 and abs(len(idx["val"]) - 0.1 * n) <= 10
    if stratify:  # every class is cut in the same proportions, to rounding
        counts = np.bincount(raw_digits[1])
        np.testing.assert_array_equal(np.bincount(splits["test"]["y"], minlength=10),
                                      np.round(counts * 0.25))


def test_digits_determinism_and_hash_stability(raw_digits):
    cfg = DigitsConfig()
    a, b, c = DIGITS.generate(cfg, 0), DIGITS.generate(cfg, 0), DIGITS.generate(cfg, 1)
    assert data_hash(a) == data_hash(b) != data_hash(c)
    # the recorded hash of the raw data: stable across calls and equal to one computed here
    images, labels = raw_digits
    h = hashlib.sha256()
    h.update(f"images/{images.shape}".encode())
    h.update(images.astype(np.uint8).tobytes())
    h.update(f"labels/{labels.shape}".encode())
    h.update(labels.astype("<i8").tobytes())
    src = DIGITS.source(cfg)
    assert src["sha256"] == DIGITS.source(cfg)["sha256"] == h.hexdigest()
    import sklearn

    assert src["sklearn"] == sklearn.__version__ and src["order"] == "rows"
    assert DIGITS.source(DigitsConfig(order="permuted", permutation_seed=7))["permutation_seed"] \
        == 7


def test_digits_orders_hold_the_same_pixels():
    rows = DIGITS.generate(DigitsConfig(order="rows"), 0)["test"]["x"]
    pixels = DIGITS.generate(DigitsConfig(order="pixels"), 0)["test"]["x"]
    perm_cfg = DigitsConfig(order="permuted", permutation_seed=5)
    permuted = DIGITS.generate(perm_cfg, 0)["test"]["x"]
    np.testing.assert_array_equal(pixels.reshape(rows.shape), rows)
    p = permutation(5)
    assert sorted(p) == list(range(64)) and not np.array_equal(p, np.arange(64))
    np.testing.assert_array_equal(permuted[:, :, 0], pixels[:, p, 0])
    np.testing.assert_array_equal(permutation(5), p)  # fixed by its seed
    assert not np.array_equal(permutation(6), p)
    other = DIGITS.generate(DigitsConfig(order="permuted", permutation_seed=6), 0)["test"]["x"]
    assert not np.array_equal(other, permuted)


def test_digits_baseline_by_direct_computation():
    cfg = DigitsConfig(stratify=False)
    splits = DIGITS.generate(cfg, 2)
    b = DIGITS.baseline(cfg, splits)
    labels, counts = np.unique(splits["train"]["y"], return_counts=True)
    majority = labels[counts.argmax()]
    assert b["majority_class"] == majority
    y = splits["test"]["y"]
    logits = np.zeros((len(y), 10))
    logits[:, majority] = 1.0
    assert b["accuracy"] == DIGITS.metrics(cfg, logits, y)["accuracy"] == np.mean(y == majority)
    assert b["loss"] == pytest.approx(xent_np(np.zeros((len(y), 10)), y)) and b["name"]


def test_digits_metrics_on_hand_made_predictions():
    cfg = DigitsConfig()
    y = np.array([0, 1, 2, 3, 9])
    right = np.eye(10)[y] * 30.0
    m = DIGITS.metrics(cfg, right, y)
    assert m["accuracy"] == 1.0 and m["loss"] < 1e-10
    wrong = np.eye(10)[(y + 1) % 10] * 30.0
    assert DIGITS.metrics(cfg, wrong, y)["accuracy"] == 0.0
    half = np.eye(10)[np.where(np.arange(5) < 2, y, (y + 1) % 10)]  # logits 1 or 0
    m = DIGITS.metrics(cfg, half, y)
    assert m["accuracy"] == pytest.approx(0.4)
    p_right = np.e / (np.e + 9)  # softmax of logits with a single 1
    assert m["loss"] == pytest.approx(-(2 * np.log(p_right) + 3 * np.log(1 / (np.e + 9))) / 5)


def test_digits_bad_config_is_one_line():
    with pytest.raises(ValidationError, match="val_fraction \\+ test_fraction = 1.0"):
        DigitsConfig(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValidationError, match="order"):
        DigitsConfig(order="columns")
    with pytest.raises(ValidationError, match="val_fraction = 0.001: leaves the val split "
                                              "without images of some class"):
        DigitsConfig(val_fraction=0.001)  # 0.17 images of the smallest class round to none


# ---------------------------------------------------------------- sunspots
def test_sunspots_loader_and_windows(raw_sunspots):
    years, values = raw_sunspots
    assert len(values) == 309 and years[0] == 1700 and years[-1] == 2008
    cfg = SunspotsConfig(window=12, horizon=2)
    splits = SUNSPOTS.generate(cfg, 0)
    sc = scaler(cfg)
    for s in SPLITS:
        x, y, t = splits[s]["x"], splits[s]["y"], splits[s]["target_index"]
        assert x.shape == (len(y), 12, 1) and y.shape == (len(y), 1)
        np.testing.assert_allclose(sc.invert(y[:, 0]), values[t], rtol=1e-5, atol=1e-3)
        first = values[t[0] - 2 - 11:t[0] - 2 + 1]  # the window ends `horizon` before t
        np.testing.assert_allclose(sc.invert(x[0, :, 0]), first, rtol=1e-5, atol=1e-3)
    t = np.concatenate([splits[s]["target_index"] for s in SPLITS])
    np.testing.assert_array_equal(t, np.arange(12 + 2 - 1, 309))  # every window, in order
    # the series is fixed: any seed gives the same data
    assert data_hash(SUNSPOTS.generate(cfg, 0)) == data_hash(SUNSPOTS.generate(cfg, 5))


@pytest.mark.parametrize("window, horizon", [(20, 1), (5, 3)])
def test_sunspots_split_is_chronological_without_target_leakage(window, horizon):
    cfg = SunspotsConfig(window=window, horizon=horizon)
    splits = SUNSPOTS.generate(cfg, 0)
    t = {s: splits[s]["target_index"] for s in SPLITS}
    reads = {s: np.unique(np.concatenate([t[s], *[t[s] - horizon - k for k in range(window)]]))
             for s in SPLITS}  # every series index a split's windows read, inputs and targets
    for early, late in (("train", "val"), ("val", "test"), ("train", "test")):
        # no split reads a later split's target, nor a value at or after its first one
        assert reads[early].max() < t[late].min()
        assert not set(reads[early]) & set(t[late])
    # allowed overlap: the first validation window's inputs are values the training windows
    # read (with horizon 1: exactly their last `window`); targets are never shared
    first_val_inputs = t["val"][0] - horizon - np.arange(window)
    assert set(first_val_inputs) <= set(reads["train"])
    if horizon == 1:
        assert sorted(first_val_inputs) == list(reads["train"][-window:])
    assert not set(t["train"]) & set(t["val"]) and not set(t["val"]) & set(t["test"])


def test_sunspots_scaling_uses_the_training_part_only(raw_sunspots):
    values = raw_sunspots[1]
    cfg = SunspotsConfig()
    splits = SUNSPOTS.generate(cfg, 0)
    end = splits["train"]["target_index"].max() + 1  # the training part: values[:end]
    np.testing.assert_array_equal(train_part(cfg), values[:end])
    sc = scaler(cfg)
    assert sc.mean == pytest.approx(values[:end].mean()) != pytest.approx(values.mean())
    assert sc.std == pytest.approx(values[:end].std())
    assert sc.naive_mae == pytest.approx(np.abs(np.diff(values[:end])).mean())
    z = np.concatenate([splits["train"]["x"][:, :, 0].ravel(), splits["train"]["y"][:, 0]])
    assert abs(z.mean()) < 0.2  # roughly centred: windows repeat values unevenly


class ToyConfig(ForecastConfig):
    period: ClassVar[int] = 4
    values: tuple[float, ...] = tuple(np.sin(np.arange(60) * np.pi / 2) + np.arange(60) / 10)

    def series(self) -> np.ndarray:
        return np.asarray(self.values, dtype=np.float64)


class Toy(ForecastTask):
    name, Config, units = "toy", ToyConfig, "a toy series"

    def dataset_source(self, cfg):
        return {}


def test_values_after_the_training_part_leave_training_data_and_scaler_unchanged():
    task, base = Toy(), ToyConfig(window=6)
    end = len(train_part(base))
    later = list(base.values)
    later[end:] = [v * 10 + 5 for v in later[end:]]
    moved = ToyConfig(window=6, values=tuple(later))
    assert scaler(moved) == scaler(base)
    a, b = task.generate(base, 0), task.generate(moved, 0)
    np.testing.assert_array_equal(a["train"]["x"], b["train"]["x"])
    np.testing.assert_array_equal(a["train"]["y"], b["train"]["y"])
    assert not np.array_equal(a["test"]["y"], b["test"]["y"])
    earlier = list(base.values)
    earlier[end - 1] += 1.0  # the training part's last value does move the scaler
    assert scaler(ToyConfig(window=6, values=tuple(earlier))) != scaler(base)


def test_sunspots_metrics_on_hand_made_predictions(raw_sunspots):
    values = raw_sunspots[1]
    cfg = SunspotsConfig()
    y = SUNSPOTS.generate(cfg, 0)["test"]["y"].astype(np.float64)
    end = len(train_part(cfg))
    std, naive = values[:end].std(), np.abs(np.diff(values[:end])).mean()
    m = SUNSPOTS.metrics(cfg, y.copy(), y)
    assert m["loss"] == m["rmse"] == m["mase"] == 0.0
    shift = np.where(np.arange(len(y))[:, None] % 2 == 0, 0.5, -0.25)  # scaled errors
    m = SUNSPOTS.metrics(cfg, y + shift, y)
    assert m["loss"] == pytest.approx(np.mean(shift ** 2))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((shift * std) ** 2)))  # sunspot numbers
    assert m["mase"] == pytest.approx(np.mean(np.abs(shift * std)) / naive)


def test_sunspots_baselines_by_direct_computation(raw_sunspots):
    values = raw_sunspots[1]
    cfg = SunspotsConfig()
    splits = SUNSPOTS.generate(cfg, 0)
    b = SUNSPOTS.baseline(cfg, splits)
    t = splits["test"]["target_index"]
    end = len(train_part(cfg))
    naive = np.abs(np.diff(values[:end])).mean()
    direct = {}
    for key, pred in (("persistence", values[t - cfg.horizon]), ("seasonal", values[t - 11])):
        err = pred - values[t]
        direct[key] = np.mean(np.abs(err)) / naive
        assert b[f"mase_{key}"] == pytest.approx(direct[key], rel=1e-5)
        assert b[f"rmse_{key}"] == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-5)
        assert b[f"loss_{key}"] == pytest.approx(np.mean((err / values[:end].std()) ** 2),
                                                 rel=1e-5)
    best = min(direct, key=direct.get)
    assert b["mase"] == b[f"mase_{best}"] and b["rmse"] == b[f"rmse_{best}"]
    assert b["loss"] == b[f"loss_{best}"] and best.split()[0] in b["name"].lower()
    assert SUNSPOTS.spec(cfg).solved_threshold < min(direct.values())  # solving beats both


def test_sunspots_source_and_bad_configs(raw_sunspots):
    import statsmodels

    src = SUNSPOTS.source(SunspotsConfig())
    values = np.ascontiguousarray(raw_sunspots[1], dtype="<f8")
    expected = hashlib.sha256(f"{values.shape}".encode() + values.tobytes()).hexdigest()
    assert src["sha256"] == expected and src["statsmodels"] == statsmodels.__version__
    assert src["kind"] == "dataset" and "sunspots" in src["dataset"]
    with pytest.raises(ValidationError, match="window = 307: leaves 2 windows"):
        SunspotsConfig(window=307)
    with pytest.raises(ValidationError, match="horizon = 12: longer than the seasonal period"):
        SunspotsConfig(horizon=12)
    with pytest.raises(ValidationError, match="val_fraction \\+ test_fraction"):
        SunspotsConfig(val_fraction=0.6, test_fraction=0.4)


# ---------------------------------------------------------------- co2 (differenced)
@pytest.fixture(scope="module")
def raw_co2():
    from statsmodels.datasets import co2

    return co2.load_pandas().data["co2"].to_numpy(dtype=np.float64)


def test_co2_gaps_are_filled_linearly_and_the_raw_series_is_hashed(raw_co2):
    cfg = Co2Config()
    s = cfg.series()
    gap = np.isnan(raw_co2)
    assert gap.any() and not np.isnan(s).any() and len(s) == len(raw_co2)
    np.testing.assert_array_equal(s[~gap], raw_co2[~gap])
    edges = np.flatnonzero(np.diff(gap.astype(int)))  # last observed, last missing, ...
    for a, b in zip(edges[::2], edges[1::2], strict=True):  # gap = a+1 .. b
        np.testing.assert_allclose(s[a:b + 2], np.linspace(s[a], s[b + 1], b - a + 2))
    src = CO2.source(cfg)
    raw = np.ascontiguousarray(raw_co2, dtype="<f8")
    assert src["sha256"] == hashlib.sha256(f"{raw.shape}".encode() + raw.tobytes()).hexdigest()
    assert src["missing"] == gap.sum() and "interpolation" in src["fill"]


def test_co2_changes_windows_metrics_and_baselines_in_ppmv():
    cfg = Co2Config()
    s, w = cfg.series(), cfg.window
    splits = CO2.generate(cfg, 0)
    t = {k: splits[k]["target_index"] for k in SPLITS}
    end = len(train_part(cfg))
    assert end == t["train"].max() + 1 <= t["val"].min() and t["val"].max() < t["test"].min()
    changes = np.diff(s[:end])
    sc = scaler(cfg)
    assert sc.mean == pytest.approx(changes.mean()) and sc.std == pytest.approx(changes.std())
    test = splits["test"]
    tt = test["target_index"]
    np.testing.assert_allclose(sc.invert(test["y"][:, 0]), s[tt] - s[tt - 1], atol=1e-4)
    window_changes = np.diff(s[tt[0] - 1 - w:tt[0]])  # the w changes up to the last value
    np.testing.assert_allclose(sc.invert(test["x"][0, :, 0]), window_changes, atol=1e-4)
    # a predicted change, added to the last value, misses the value by the change's error
    y = test["y"].astype(np.float64)
    pred = y + np.linspace(-0.5, 0.7, len(y))[:, None]
    level = s[tt - 1] + sc.invert(pred[:, 0])
    naive = np.abs(changes).mean()
    m = CO2.metrics(cfg, pred, y)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((level - s[tt]) ** 2)), rel=1e-4)
    assert m["mase"] == pytest.approx(np.mean(np.abs(level - s[tt])) / naive, rel=1e-4)
    b = CO2.baseline(cfg, splits)
    for key, guess in (("persistence", s[tt - 1]), ("seasonal", s[tt - 52])):
        assert b[f"mase_{key}"] == pytest.approx(np.mean(np.abs(guess - s[tt])) / naive,
                                                 rel=1e-4)
        assert b[f"rmse_{key}"] == pytest.approx(np.sqrt(np.mean((guess - s[tt]) ** 2)),
                                                 rel=1e-4)
    assert b["mase"] == min(b["mase_persistence"], b["mase_seasonal"])
    assert cfg.solved_mase < b["mase"]
    with pytest.raises(ValidationError, match="horizon = 2: difference = true"):
        Co2Config(horizon=2)


def test_validating_params_reads_no_dataset_and_the_loaders_check_its_sizes():
    """Every stage validates all of params.yaml: the real tasks' checks use the datasets' known
    sizes, so no stage imports scikit-learn or statsmodels unless its task reads them."""
    import subprocess
    import sys

    from rnnbench.tasks import co2, digits, sunspots

    code = ("import sys; from rnnbench.params import load_params; load_params('params.yaml'); "
            "print(sorted(m for m in ('sklearn', 'statsmodels') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert tuple(np.bincount(digits.load_raw()[1])) == digits.CLASS_COUNTS
    assert len(sunspots.load_series()) == sunspots.SunspotsConfig().series_length()
    assert len(co2.load_raw()) == co2.Co2Config().series_length()
