"""The selective copy task (Gu & Dao 2023): layout, determinism, baseline and metric."""

from __future__ import annotations

import numpy as np
import pytest

from rnnbench.config import ConfigError
from rnnbench.params import load_params
from rnnbench.tasks.base import data_hash, xent_np
from rnnbench.tasks.copy import DELIM
from rnnbench.tasks.selective_copy import SelectiveCopy, SelectiveCopyConfig, baseline_xent


def test_layout_symbols_at_random_positions_recalled_in_order():
    d = SelectiveCopy.sample(np.random.default_rng(0), 500, 20, 5)
    x, y, pos = d["x"], d["y"], d["pos"]
    assert x.shape == y.shape == (500, 20 + 1 + 5)
    assert (x[:, 20] == DELIM).all() and (x[:, 21:] == 0).all()
    region = x[:, :20]
    assert ((region > 0).sum(axis=1) == 5).all()  # exactly K symbols, blanks elsewhere
    assert ((region >= 0) & (region <= 8)).all()
    for i in range(50):
        np.testing.assert_array_equal(np.flatnonzero(region[i]), pos[i])
        np.testing.assert_array_equal(y[i, -5:], region[i][pos[i]])  # in order of appearance
    assert (y[:, :-5] == 0).all()
    # the positions really vary: every step of the region holds a symbol in some example, and
    # the first symbol is not always at step 0 (the plain copy task's layout)
    assert (region > 0).any(axis=0).all() and (pos[:, 0] > 0).mean() > 0.5


def test_same_seed_same_data_other_seed_other_data():
    task, cfg = SelectiveCopy(), SelectiveCopyConfig(seq_len=10, n_copy=3, n_train=40,
                                                     n_val=10, n_test=10)
    assert data_hash(task.generate(cfg, 7)) == data_hash(task.generate(cfg, 7))
    assert data_hash(task.generate(cfg, 7)) != data_hash(task.generate(cfg, 8))


@pytest.mark.parametrize("seq_len,k", [(8, 8), (30, 4), (100, 16)])
def test_baseline_matches_its_predictor(seq_len, k):
    task = SelectiveCopy()
    cfg = SelectiveCopyConfig(seq_len=seq_len, n_copy=k, n_train=1, n_val=1, n_test=2000)
    splits = task.generate(cfg, 0)
    y = splits["test"]["y"]
    base = task.baseline(cfg, splits)
    assert abs(xent_np(SelectiveCopy.baseline_logits(y, k), y) - base["loss"]) < 1e-9
    assert baseline_xent(seq_len, k) == pytest.approx(k * np.log(8) / (seq_len + 1 + k))
    guess = np.random.default_rng(0).integers(1, 9, size=y[:, -k:].shape)
    assert abs((guess == y[:, -k:]).mean() - base["accuracy"]) < 0.01
    assert task.metrics(cfg, SelectiveCopy.baseline_logits(y, k), y)["loss"] == \
        pytest.approx(base["loss"])


def test_metrics_on_perfect_and_blank_predictions():
    task, cfg = SelectiveCopy(), SelectiveCopyConfig(seq_len=9, n_copy=3)
    y = SelectiveCopy.sample(np.random.default_rng(1), 40, 9, 3)["y"]
    m = task.metrics(cfg, np.eye(9)[y] * 50.0, y)
    assert m["accuracy"] == 1.0 and m["loss"] < 1e-10
    assert task.metrics(cfg, np.eye(9)[np.zeros_like(y)] * 50.0, y)["accuracy"] == 0.0


def test_memory_spans_run_from_the_last_symbol_to_the_first_recall():
    task, cfg = SelectiveCopy(), SelectiveCopyConfig(seq_len=15, n_copy=4)
    split = SelectiveCopy.sample(np.random.default_rng(2), 30, 15, 4)
    spans = task.memory_spans(cfg, split)
    np.testing.assert_array_equal(spans[:, 0], split["pos"].max(axis=1))
    assert (spans[:, 1] == 16).all() and (spans[:, 0] < spans[:, 1]).all()


def test_longer_test_keeps_k_and_multiplies_t():
    task, cfg = SelectiveCopy(), SelectiveCopyConfig(seq_len=10, n_copy=4)
    long = task.at_length(cfg, 4)
    assert long.seq_len == 40 and long.n_copy == 4 and long.n_train == 1


def test_more_symbols_than_steps_is_refused(params_path):
    with pytest.raises(ConfigError, match="n_copy = 60: more symbols than the seq_len = 50") \
            as info:
        load_params(params_path, ["tasks.selective_copy.seq_len=50",
                                  "tasks.selective_copy.n_copy=60"])
    assert "\n" not in str(info.value)
