"""The training loop: learning, determinism, clipping placement, divergence, budgets."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from rnnbench.config import ConfigError
from rnnbench.models.build import build_model
from rnnbench.models.families import GRUConfig, RNNConfig
from rnnbench.tasks.adding import Adding, AddingConfig
from rnnbench.training.fit import fit
from rnnbench.training.schema import TrainConfig
from rnnbench.training.step import clip_gradients

TASK = Adding()
CFG = AddingConfig(seq_len=6, n_train=512, n_val=128, n_test=128)
SPEC = TASK.spec(CFG)
DATA = TASK.generate(CFG, 0)


def metrics_fn(pred, y):
    return TASK.metrics(CFG, pred, y)


def train(model_cfg=None, seed=0, **kw):
    torch.manual_seed(seed)
    model = build_model(model_cfg or GRUConfig(family="gru", hidden_size=16), SPEC)
    cfg = TrainConfig(**{"lr": 0.01, "max_epochs": 4, "early_stop": False, **kw})
    return model, fit(model, SPEC, metrics_fn, DATA, cfg, seed)


def test_learns_the_task_well_below_baseline():
    _, r = train(max_epochs=25)
    assert r.status == "ok"
    assert r.test["mse"] < 0.2 * (1 / 6)
    assert r.curves[-1]["val_mse"] < r.curves[0]["val_mse"]
    assert r.steps == 25 * 8 and r.epochs == 25


def test_same_seed_gives_identical_numbers_and_another_seed_does_not():
    _, a = train(seed=1)
    _, b = train(seed=1)
    _, c = train(seed=2)
    assert a.test == b.test
    assert [row["train_loss"] for row in a.curves] == [row["train_loss"] for row in b.curves]
    assert a.test != c.test


def test_clip_by_norm_returns_the_preclip_norm_and_clips():
    model = torch.nn.Linear(4, 3)
    params = list(model.parameters())
    for p in params:
        p.grad = torch.full_like(p, 2.0)
    norm, clipped = clip_gradients(TrainConfig(clip="norm", clip_value=1.0), params)
    assert norm == pytest.approx(2.0 * math.sqrt(15)) and clipped
    after = torch.sqrt(sum((p.grad ** 2).sum() for p in params))
    assert float(after) == pytest.approx(1.0, rel=1e-5)


def test_clip_by_value_and_off():
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.tensor([0.5, -3.0, 2.0])
    norm, clipped = clip_gradients(TrainConfig(clip="value", clip_value=1.0), [p])
    assert clipped and norm == pytest.approx(math.sqrt(0.25 + 9 + 4))
    assert p.grad.tolist() == [0.5, -1.0, 1.0]
    p.grad = torch.tensor([0.5, -3.0, 2.0])
    assert clip_gradients(TrainConfig(clip="none"), [p])[1] is False
    assert p.grad.tolist() == [0.5, -3.0, 2.0]


def test_clipping_acts_between_backward_and_step():
    # With SGD and a tiny clip norm, every update is at most lr * clip: the weights barely move.
    # Were clipping applied before backward() (the classic bug), the step would be unclipped.
    model_cfg = GRUConfig(family="gru", hidden_size=8)
    torch.manual_seed(0)
    start = [p.detach().double() for p in build_model(model_cfg, SPEC).parameters()]
    model, r = train(model_cfg, optimizer="sgd", lr=1.0, clip="norm", clip_value=1e-6,
                     max_steps=5, dtype="float64")
    moved = torch.sqrt(sum(((p.detach() - s) ** 2).sum()
                           for p, s in zip(model.parameters(), start, strict=True)))
    assert r.steps == 5 and r.clipped_fraction == 1.0
    assert float(moved) <= 5 * 1e-6 * 1.001


def test_divergence_is_a_result_not_a_crash():
    model_cfg = RNNConfig(family="rnn", hidden_size=16)
    _, r = train(model_cfg, optimizer="sgd", lr=1e6, clip="none", max_epochs=3)
    assert r.status == "diverged"
    assert r.diverged_at_step is not None and r.diverged_at_step >= 1
    assert "non-finite" in r.reason and str(r.diverged_at_step) in r.reason
    assert r.test == {}


def test_max_steps_and_early_stop():
    _, r = train(max_steps=11, max_epochs=100)
    assert r.steps == 11 and r.epochs == 11 / 8 and len(r.curves) == 2
    easy = AddingConfig(seq_len=6, n_train=512, n_val=128, n_test=128, solved_mse=10.0)
    spec = TASK.spec(easy)
    torch.manual_seed(0)
    model = build_model(GRUConfig(family="gru", hidden_size=8), spec)
    r = fit(model, spec, metrics_fn, DATA, TrainConfig(max_epochs=50), 0)
    assert r.epochs == 1 and r.steps_to_solve == 8 and r.time_to_solve_s > 0


def scripted(val_values):
    """A metrics_fn reporting the given validation MSEs in turn (the test split's call gets the
    true MSE), and an on_epoch callback that records the weights after each validation."""
    calls, weights = iter(val_values), []

    def fn(pred, y):
        if y is DATA["val"]["y"]:
            v = next(calls)
            return {"mse": v, "loss": v}
        return metrics_fn(pred, y)

    def on_epoch(row, series):
        weights.append({k: v.clone() for k, v in model.state_dict().items()})

    torch.manual_seed(0)
    model = build_model(GRUConfig(family="gru", hidden_size=8), SPEC)
    return model, fn, on_epoch, weights


def real(spec):
    from dataclasses import replace

    return replace(spec, real_data=True)


def test_real_data_trains_its_budget_and_keeps_the_best_validation_checkpoint():
    spec = real(TASK.spec(AddingConfig(seq_len=6, n_train=512, n_val=128, n_test=128,
                                       solved_mse=0.3)))
    model, fn, on_epoch, weights = scripted([0.5, 0.2, 0.1, 0.4, 0.3])  # solved from round 2
    r = fit(model, spec, fn, DATA, TrainConfig(max_epochs=5), 0, on_epoch=on_epoch)
    assert (r.early_stop, r.keep_best, r.stopped) == (False, True, "budget")
    assert r.steps == 40 and r.steps_to_solve == 16 and r.time_to_solve_s > 0  # not stopped
    assert r.best_step == 24 and r.val["mse"] == 0.1  # the checkpoint tested is round 3's
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[2][k]) and not torch.equal(v, weights[-1][k])


def test_generated_data_stops_at_the_threshold_and_tests_its_last_model():
    spec = TASK.spec(AddingConfig(seq_len=6, n_train=512, n_val=128, n_test=128, solved_mse=0.3))
    model, fn, on_epoch, weights = scripted([0.5, 0.2, 0.1])
    r = fit(model, spec, fn, DATA, TrainConfig(max_epochs=5), 0, on_epoch=on_epoch)
    assert (r.early_stop, r.keep_best, r.stopped, r.steps) == (True, False, "solved", 16)
    # explicit settings win over the data's defaults
    model, fn, on_epoch, weights = scripted([0.5, 0.2, 0.1, 0.4, 0.3])
    r = fit(model, real(spec), fn, DATA, TrainConfig(max_epochs=5, early_stop=True), 0)
    assert (r.stopped, r.steps, r.keep_best) == ("solved", 16, True)


def test_patience_stops_after_rounds_without_a_new_best():
    spec = real(SPEC)  # the default threshold is never reached by these values
    model, fn, on_epoch, weights = scripted([0.5, 0.4, 0.45, 0.41, 0.6, 0.1])
    r = fit(model, spec, fn, DATA, TrainConfig(max_epochs=6, patience=3), 0)
    assert (r.stopped, r.steps, r.best_step, r.val["mse"]) == ("patience", 40, 16, 0.4)


def test_every_real_data_task_says_so_and_no_generated_one_does():
    from rnnbench.tasks.registry import TASKS

    for name, task in TASKS.items():
        cfg = task.Config()
        assert task.spec(cfg).real_data == (task.source(cfg)["kind"] == "dataset"), name


def test_validation_period_in_steps():
    _, r = train(max_steps=20, eval_every=6)
    assert [row["step"] for row in r.curves] == [6, 12, 18, 20]
    assert [row["epoch"] for row in r.curves] == [0.75, 1.5, 2.25, 2.5]


def test_float64_runs_in_float64():
    model, r = train(dtype="float64", max_epochs=1)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert r.status == "ok" and np.isfinite(r.test["mse"])


def test_cuda_requested_without_a_gpu_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="train.device = 'cuda': no CUDA device"):
        train(device="cuda")


def test_compilation_and_thread_pinning_come_before_on_start_and_the_clock():
    events = []

    def precompile():
        events.append("precompile")
        time.sleep(0.05)
        return 0.05

    torch.manual_seed(0)
    model = build_model(GRUConfig(family="gru", hidden_size=8), SPEC)
    model.precompile = precompile
    r = fit(model, SPEC, metrics_fn, DATA, TrainConfig(max_steps=2), 0,
            on_start=lambda: events.append("start"),
            on_epoch=lambda row, series: events.append("epoch"))
    assert events == ["precompile", "start", "epoch"]
    assert r.compile_s == 0.05 and r.train_time_s < r.wall_time_s
    assert r.threads["torch_threads"] == 1
