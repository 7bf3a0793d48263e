"""Task generators: deterministic, shaped as declared, with baselines checked numerically."""

from __future__ import annotations

import numpy as np
import pytest

from rnnbench.config import ConfigError
from rnnbench.tasks.adding import BASELINE_MSE, Adding, AddingConfig
from rnnbench.tasks.base import data_hash, xent_np
from rnnbench.tasks.chars import CharsConfig
from rnnbench.tasks.copy import DELIM, N_COPY, Copy, CopyConfig, baseline_xent
from rnnbench.tasks.registry import TASKS, get_task
from rnnbench.tasks.sine import Sine, SineConfig

SMALL = {
    "adding": AddingConfig(seq_len=20, n_train=300, n_val=50, n_test=50),
    "copy": CopyConfig(delay=5, n_train=300, n_val=50, n_test=50),
    "sine": SineConfig(),
    "chars": CharsConfig(max_chars=60_000, streams=8, bptt=32),
    "digits": get_task("digits").Config(),
    "sunspots": get_task("sunspots").Config(),
    "co2": get_task("co2").Config(),
    "sentiment": get_task("sentiment").Config(n_train=600, n_val=200, n_test=200),
    "tagging": get_task("tagging").Config(n_train=300, n_val=100, n_test=100),
    "dates": get_task("dates").Config(n_train=300, n_val=50, n_test=50),
    "reverse": get_task("reverse").Config(n_train=300, n_val=50, n_test=50),
    "draw_digits": get_task("draw_digits").Config(),
    "selective_copy": get_task("selective_copy").Config(seq_len=12, n_copy=4, n_train=300,
                                                        n_val=50, n_test=50),
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_generation_is_deterministic_and_shaped(name):
    task, cfg = get_task(name), SMALL[name]
    spec = task.spec(cfg)
    a, b, c = task.generate(cfg, 0), task.generate(cfg, 0), task.generate(cfg, 1)
    assert data_hash(a) == data_hash(b)
    if task.source(cfg)["kind"] == "synthetic":  # a dataset's text or series is what it is
        assert data_hash(a) != data_hash(c)
    for split in ("train", "val", "test"):
        x, y = a[split]["x"], a[split]["y"]
        assert len(x) == len(y) > 0
        if spec.input_vocab is None:
            assert x.ndim == 3 and x.shape[-1] == spec.input_size
        else:
            assert x.ndim == 2 and x.max() < spec.input_vocab
        if spec.readout == "last" and spec.loss == "mse":
            assert y.shape == (len(x), spec.output_size)
        if spec.shape == "seq2seq":
            assert y.shape == (len(x), spec.output_len) and y.max() < spec.output_size
        elif spec.readout == "all" and spec.loss == "mse":  # a vector of outputs per step
            assert y.shape == (*x.shape[:2], spec.output_size)
        elif spec.readout == "all":
            assert y.shape == x.shape[:2] and y.max() < spec.output_size


def test_unknown_task_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown task 'nope' .known: sine, adding, copy, "):
        get_task("nope")


def test_adding_markers_and_targets():
    d = Adding.sample(np.random.default_rng(0), 500, 30)
    x, y = d["x"], d["y"]
    markers = x[..., 1]
    assert (markers.sum(1) == 2).all()
    first, second = markers[:, :15].argmax(1), markers[:, 15:].argmax(1) + 15
    assert (markers[:, :15].sum(1) == 1).all() and (markers[:, 15:].sum(1) == 1).all()
    expected = x[np.arange(500), first, 0] + x[np.arange(500), second, 0]
    np.testing.assert_allclose(y[:, 0], expected, rtol=1e-6)


def test_adding_baseline_matches_simulation():
    # Predicting 1 on a large simulated sample: MSE -> Var(U1 + U2) = 1/6.
    y = Adding.sample(np.random.default_rng(1), 200_000, 4)["y"]
    assert abs(np.mean((y - 1.0) ** 2) - BASELINE_MSE) < 2e-3
    # and 1 is the best constant: the mean of the targets
    assert abs(y.mean() - 1.0) < 5e-3


def test_copy_layout():
    d = Copy.sample(np.random.default_rng(0), 100, 7)
    x, y = d["x"], d["y"]
    assert x.shape == (100, 7 + 2 * N_COPY)
    assert (x[:, N_COPY + 7 - 1] == DELIM).all()
    assert ((x[:, :N_COPY] >= 1) & (x[:, :N_COPY] <= 8)).all()
    np.testing.assert_array_equal(y[:, -N_COPY:], x[:, :N_COPY])
    assert (y[:, :-N_COPY] == 0).all()
    assert (x[:, N_COPY:N_COPY + 6] == 0).all() and (x[:, -N_COPY:] == 0).all()


@pytest.mark.parametrize("delay", [1, 10, 100])
def test_copy_baseline_matches_its_predictor(delay):
    task, cfg = Copy(), CopyConfig(delay=delay, n_train=10, n_val=10, n_test=2000)
    splits = task.generate(cfg, 0)
    y = splits["test"]["y"]
    assert abs(xent_np(Copy.baseline_logits(y), y) - baseline_xent(delay)) < 1e-9
    assert baseline_xent(delay) == pytest.approx(10 * np.log(8) / (delay + 20))
    # the trivial predictor's recall accuracy, simulated: a uniform guess is right 1/8 times
    guess = np.random.default_rng(0).integers(1, 9, size=y[:, -N_COPY:].shape)
    assert abs((guess == y[:, -N_COPY:]).mean() - task.baseline(cfg, splits)["accuracy"]) < 0.01


def test_copy_metrics_on_perfect_and_blank_predictions():
    task, cfg = Copy(), CopyConfig(delay=4)
    y = Copy.sample(np.random.default_rng(0), 50, 4)["y"]
    perfect = np.eye(9)[y] * 50.0
    m = task.metrics(cfg, perfect, y)
    assert m["accuracy"] == 1.0 and m["loss"] < 1e-10
    blank = np.eye(9)[np.zeros_like(y)] * 50.0
    assert task.metrics(cfg, blank, y)["accuracy"] == 0.0


def test_sine_split_is_chronological_and_windows_follow_the_series():
    task, cfg = Sine(), SineConfig()
    s = task.generate(cfg, 0)
    sizes = [len(s[k]["y"]) for k in ("train", "val", "test")]
    assert sum(sizes) == 90 and sizes[1] == sizes[2] == 14
    # windows slide by one: each target is the next window's last input
    x = np.concatenate([s[k]["x"] for k in ("train", "val", "test")])
    y = np.concatenate([s[k]["y"] for k in ("train", "val", "test")])
    np.testing.assert_array_equal(y[:-1, 0], x[1:, -1, 0])
    # test targets come last in time: the final target is the series' last point
    t = np.linspace(-2 * np.pi, 2 * np.pi, 100)
    assert abs(y[-1, 0] - np.sin(t[-1])) < 0.5


def test_sine_baselines():
    task, cfg = Sine(), SineConfig(noise=0.0)
    splits = task.generate(cfg, 0)
    b = task.baseline(cfg, splits)
    assert b["mse_noise_floor"] == 0.0
    assert b["mse_last_value"] < b["mse"]  # persistence beats the mean on a smooth wave
    y = splits["test"]["y"]
    assert b["mse"] == pytest.approx(np.mean((y - splits["train"]["y"].mean()) ** 2), rel=1e-6)
