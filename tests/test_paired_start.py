"""numba_rnn and torch rnn from the same seed are the same network: identical initial weights,
and in float64 the one training loop gives the same losses step for step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnbench.models.build import build_model
from rnnbench.models.families import NumbaRNNConfig, RNNConfig
from rnnbench.tasks.adding import Adding, AddingConfig
from rnnbench.tasks.copy import Copy, CopyConfig
from rnnbench.training.fit import fit
from rnnbench.training.schema import TrainConfig

CASES = {
    "adding": (Adding(), AddingConfig(seq_len=12, n_train=640, n_val=64, n_test=64)),
    "copy": (Copy(), CopyConfig(delay=4, n_train=640, n_val=64, n_test=64)),
}


def paired_runs(task_name, layers=1, bidirectional=False, optimizer="adam", steps=100):
    task, cfg = CASES[task_name]
    spec, data = task.spec(cfg), task.generate(cfg, 0)
    train_cfg = TrainConfig(optimizer=optimizer, lr=0.01, momentum=0.5 * (optimizer != "adam"),
                            max_steps=steps, max_epochs=100, early_stop=False, dtype="float64",
                            clip="norm", clip_value=1.0)
    losses = {}
    for family in ("rnn", "numba_rnn"):
        cls = RNNConfig if family == "rnn" else NumbaRNNConfig
        torch.manual_seed(7)
        model = build_model(cls(family=family, hidden_size=16, num_layers=layers,
                                bidirectional=bidirectional), spec)
        curves: list[float] = []
        result = fit(model, spec, lambda p, y: task.metrics(cfg, p, y), data, train_cfg, 7,
                     on_epoch=lambda row, series, c=curves: c.extend(series["train_loss"]))
        losses[family] = (np.array(curves), result, model)
    return losses


def test_same_seed_same_initial_weights():
    task, cfg = CASES["adding"]
    spec = task.spec(cfg)
    torch.manual_seed(3)
    a = build_model(RNNConfig(family="rnn", hidden_size=8, num_layers=2, bidirectional=True),
                    spec).state_dict()
    torch.manual_seed(3)
    b = build_model(NumbaRNNConfig(family="numba_rnn", hidden_size=8, num_layers=2,
                                   bidirectional=True), spec).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


# RMSprop is left out on purpose: while its running average of g^2 is small its step is close
# to lr * sign(g), so last-bit differences in the gradient (here ~1e-15 relative, the same on
# identical weights) grow along the trajectory, to ~1e-8 after 25 steps on `copy`.
@pytest.mark.parametrize("task_name,layers,bidirectional,optimizer", [
    ("adding", 1, False, "adam"),
    ("adding", 2, True, "sgd"),
    ("copy", 1, False, "adam"),
])
def test_losses_agree_step_for_step_in_float64(task_name, layers, bidirectional, optimizer):
    runs = paired_runs(task_name, layers, bidirectional, optimizer)
    torch_losses, torch_result, _ = runs["rnn"]
    numba_losses, numba_result, _ = runs["numba_rnn"]
    assert len(torch_losses) == len(numba_losses) == 100
    rel = np.abs(numba_losses - torch_losses) / np.abs(torch_losses)
    assert rel.max() < 1e-9, f"largest relative difference {rel.max():.3g} at step {rel.argmax()}"
    assert torch_losses[-1] < torch_losses[0]  # it trained, so the agreement means something
    for k, v in torch_result.test.items():
        assert numba_result.test[k] == pytest.approx(v, rel=1e-9)


def test_compilation_happens_before_training_and_is_reported_apart():
    runs = paired_runs("adding", steps=3)
    assert runs["numba_rnn"][1].compile_s > 0
    assert runs["rnn"][1].compile_s == 0
